"""The fast DICOM file writer: the same bytes as pydicom's ``save_as(enforce_file_format=True)``,
and pydicom's own writer wherever the fast path could differ."""

from __future__ import annotations

import copy
import io

import pydicom
import pytest
from dicom_helpers import analysis_of
from pydicom import Dataset
from pydicom.dataset import FileMetaDataset
from pydicom.sequence import Sequence
from pydicom.uid import ExplicitVRLittleEndian, ImplicitVRLittleEndian, generate_uid

from pneumolens.export import dicom_encode
from pneumolens.export.dicom_encode import encode_file, save_dicom
from pneumolens.export.dicom_sc import build_secondary_captures
from pneumolens.export.dicom_seg import build_seg
from pneumolens.export.dicom_sr import build_sr


def pydicom_bytes(ds) -> bytes:
    buffer = io.BytesIO()
    copy.deepcopy(ds).save_as(buffer, enforce_file_format=True)
    return buffer.getvalue()


@pytest.fixture(scope="module")
def outputs(tmp_path_factory):
    """SEG, SR and secondary captures of the axial phantom series, as built (not yet written)."""
    analysis = analysis_of(tmp_path_factory.mktemp("encode") / "series", "axial")
    seg = build_seg(analysis)
    return {"seg": seg, "sr": build_sr(analysis, seg), "sc": build_secondary_captures(analysis)[0]}


@pytest.mark.parametrize("kind", ["seg", "sr", "sc"])
def test_outputs_take_the_fast_path_and_match_pydicom_byte_for_byte(outputs, kind):
    ds = outputs[kind]
    expected = pydicom_bytes(ds)
    assert encode_file(copy.deepcopy(ds)) == expected  # raises where it would fall back
    round_trip = pydicom.dcmread(io.BytesIO(expected))
    assert round_trip.SOPInstanceUID == ds.SOPInstanceUID


def _dataset(transfer_syntax=ExplicitVRLittleEndian) -> Dataset:
    """A dataset exercising every branch of the encoder: nested sequences (defined and undefined
    length, items of undefined length), multi-valued numbers and strings, empty values, text
    outside ASCII, an item with its own character set, values pydicom writes itself."""
    ds = Dataset()
    ds.SpecificCharacterSet = "ISO_IR 100"
    ds.SOPClassUID = "1.2.840.10008.5.1.4.1.1.7"
    ds.SOPInstanceUID = generate_uid()
    ds.PatientName = "Müller^Jörg"
    ds.StudyDate = "20261203"
    ds.Modality = "OT"
    ds.ImageType = ["DERIVED", "SECONDARY"]
    ds.Rows, ds.Columns = 2, 2
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 8, 8, 7, 0
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.PixelData = b"\x00\x01\x02\x03"
    item = Dataset()
    item.ReferencedSOPInstanceUID = "1.2.3"  # odd length: NUL padding
    item.ImagePositionPatient = [0.5, -1.25, 3]
    item.DimensionIndexValues = [1, 2]
    item.ReferencedSegmentNumber = 3
    item.ReferencePixelX0 = -5
    item.TagAngleSecondAxis = -2
    item.SelectorSVValue = [-(2**40), 7]
    item.FloatPixelPaddingValue = 1.5
    item.SelectorFDValue = [0.25, 2.0]
    item.ContentDescription = "lésion"  # Latin-1: pydicom's element writer
    item.ContentLabel = "LABEL"
    item.PersonName = "Doe^John"
    item.ContentDate = "20261203"
    item.ContentTime = "120000.5"
    item.TextValue = "x" * 70000  # UT: 32-bit length
    item.LongCodeValue = "L" * 9
    item.ImageComments = ""  # empty value
    inner = Dataset()
    inner.CodeValue = "121322"
    inner.CodingSchemeDesignator = "DCM"
    inner.CodeMeaning = "Source image for image processing operation"
    inner.is_undefined_length_sequence_item = True
    item.PurposeOfReferenceCodeSequence = Sequence([inner])
    own_charset = Dataset()
    own_charset.SpecificCharacterSet = "ISO_IR 192"
    own_charset.CodeMeaning = "ünïcode"
    ds.ContentSequence = Sequence([item, own_charset])
    ds.ReferencedSeriesSequence = Sequence([])  # empty sequence
    ds.SourceImageSequence = Sequence([copy.deepcopy(inner)])
    ds["SourceImageSequence"].is_undefined_length = True
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = transfer_syntax
    ds.file_meta.MediaStorageSOPClassUID = ds.SOPClassUID
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    return ds


def test_every_element_kind_matches_pydicom():
    ds = _dataset()
    assert encode_file(copy.deepcopy(ds)) == pydicom_bytes(ds)


@pytest.mark.parametrize(
    "change",
    [
        pytest.param(lambda ds: setattr(ds.file_meta, "TransferSyntaxUID", ImplicitVRLittleEndian), id="implicit-vr"),
        pytest.param(lambda ds: ds.ContentSequence[0].add_new(0x00281101, "US or SS", b"\x00\x01"), id="ambiguous-in-item"),
        pytest.param(lambda ds: ds.set_original_encoding(False, True, "ISO_IR 100"), id="read-from-a-file"),
    ],
)
def test_what_the_fast_path_cannot_reproduce_is_written_by_pydicom(tmp_path, change):
    ds = _dataset()
    change(ds)
    with pytest.raises(dicom_encode._NotExact):
        encode_file(copy.deepcopy(ds))
    expected = pydicom_bytes(ds)
    assert save_dicom(copy.deepcopy(ds), tmp_path / "x.dcm").read_bytes() == expected


def test_ambiguous_pixel_data_vr_is_resolved_as_pydicom_does():
    ds = _dataset()
    ds["PixelData"].VR = "OB or OW"
    fresh = copy.deepcopy(ds)
    assert encode_file(fresh) == pydicom_bytes(ds)
    assert fresh["PixelData"].VR == "OB"
