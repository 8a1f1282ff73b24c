"""The PACS-side service: receive chest CTs, analyse them, alert on a worklist, view in OHIF.

``pneumolens serve --config FILE`` (``docs/service.md``). Parts: :mod:`~.intake` (DICOM C-STORE
receiver), :mod:`~.orthanc` (results back to Orthanc, new studies from it), :mod:`~.store`
(durable SQLite queue), :mod:`~.worker` (analyses in child processes via
:func:`pneumolens.pipeline.analyze_path`), :mod:`~.app` (FastAPI: API, events, worklist, OHIF).
Needs the ``service`` extra (fastapi, uvicorn, pynetdicom, httpx).
"""
