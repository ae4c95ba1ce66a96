"""The per-revolution analysis pipeline: ScW sky images in, published products out.

For one revolution the pipeline plans the work from an archive laid out like the ISDC's
(observations and their ScWs), then, per observation and instrument, co-adds the single-ScW
sky images into mosaics per energy band, detects sources above a significance threshold and
matches them to the catalogue (a new source gets a provisional name), extracts a light curve
(one bin per ScW) and a spectrum (one channel per energy band, with its response) for each
detected source, writes all of them as OSA-format FITS files, ingests them through the core's
ingest service (``ingest.service.ingest_files``) and publishes them. GRB triggers falling in
the revolution get an SPI-ACS light curve.

Two backends do the analysis behind one interface (``backends``): ``local`` computes the
products from the per-ScW images itself; ``mmoda`` asks the MMODA service for them through
the ``oda_api`` client. The orchestration (``service``, ``runs``) keeps its state in the
database (``ingest.models.RevolutionRun``), so that a run survives a killed worker or a
restarted broker: every step is idempotent and recorded, and a run whose worker went silent
is taken over and resumed. ``tasks`` runs the steps as a Celery canvas; ``service.run_inline``
runs them in the calling process.

Modules: ``config`` (instruments, bands, parameters), ``physics`` (responses, noise),
``archive`` (archive layout and plan), ``scwimage`` (reading ScW images), ``mosaic``
(co-addition), ``measure`` (PSF fitting and detection), ``osafits`` (OSA-format writers),
``grb`` (SPI-ACS light curves), ``generator`` (synthetic archives).
"""

#: Version of the pipeline's code, recorded in every product's provenance and in each run.
PIPELINE_VERSION = "1.0"
