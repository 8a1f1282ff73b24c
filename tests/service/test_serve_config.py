"""`serve --config FILE`: documented keys, relative paths, refusals of what would be unsafe or a typo."""

from __future__ import annotations

import pytest
from servicekit import REPO, TOKEN

from pneumolens.errors import InputError
from pneumolens.service.config import load_config


def test_the_documented_example_loads(tmp_path, monkeypatch):
    monkeypatch.setenv("PNEUMOLENS_TOKEN", TOKEN)
    text = (REPO / "configs" / "serve.toml").read_text().replace('token_file = "../pneumolens-token"', "")
    (tmp_path / "serve.toml").write_text(text)
    config = load_config(tmp_path / "serve.toml")
    assert config.host == "127.0.0.1" and config.dicom.host == "127.0.0.1"  # loopback unless told otherwise
    assert config.data_dir == tmp_path.parent / "pneumolens-data"  # relative to the file
    assert config.dicom.quiet_s == 10.0 and config.alerts.lesion_percent == 5.0
    assert config.workers >= 1 and config.threads_per_job >= 1


def test_token_from_a_file(tmp_path):
    (tmp_path / "token").write_text(TOKEN + "\n")
    (tmp_path / "serve.toml").write_text('token_file = "token"\n')
    assert load_config(tmp_path / "serve.toml").token == TOKEN


@pytest.mark.parametrize(("text", "message"), [
    ("", "token is missing"),
    ('token = "short"', "shorter than 16"),
    (f'token = "{TOKEN}"\n[dicom]\nquiet = 3', r"unknown setting\(s\) quiet in \[dicom\]"),
    (f'token = "{TOKEN}"\nprot = 80', "unknown setting"),
    (f'token = "{TOKEN}"\n[analysis]\nmethod = "magic"', "analysis.method"),
    (f'token = "{TOKEN}"\n[orthanc]\nwatch = true', "orthanc.url is not set"),
    ("token = ", "not valid TOML"),
])
def test_refusals(tmp_path, monkeypatch, text, message):
    monkeypatch.delenv("PNEUMOLENS_TOKEN", raising=False)
    (tmp_path / "serve.toml").write_text(text)
    with pytest.raises(InputError, match=message):
        load_config(tmp_path / "serve.toml")


def test_a_missing_file_is_an_input_error(tmp_path):
    with pytest.raises(InputError, match="does not exist"):
        load_config(tmp_path / "nope.toml")
