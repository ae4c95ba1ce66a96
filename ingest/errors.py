"""The error every ingest step raises for a file that cannot become a product."""


class IngestError(ValueError):
    """A file that cannot become a product; the message is one line meant for the user."""
