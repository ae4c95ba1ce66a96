"""The source classes the Gallery knows from the start (Simbad-like object types).

(code, label, parent code). Curators add more in the admin.
"""

SOURCE_CLASSES: list[tuple[str, str, str | None]] = [
    ("XRB", "X-ray binary", None),
    ("LMXB", "Low-mass X-ray binary", "XRB"),
    ("HMXB", "High-mass X-ray binary", "XRB"),
    ("CV", "Cataclysmic variable", None),
    ("Pulsar", "Pulsar", None),
    ("Magnetar", "Magnetar", "Pulsar"),
    ("AGN", "Active galactic nucleus", None),
    ("Seyfert1", "Seyfert 1 galaxy", "AGN"),
    ("Seyfert2", "Seyfert 2 galaxy", "AGN"),
    ("Blazar", "Blazar", "AGN"),
    ("BLLac", "BL Lac object", "Blazar"),
    ("FSRQ", "Flat-spectrum radio quasar", "Blazar"),
    ("QSO", "Quasar", "AGN"),
    ("RadioGalaxy", "Radio galaxy", "AGN"),
    ("GRB", "Gamma-ray burst", None),
    ("SNR", "Supernova remnant", None),
    ("Star", "Star", None),
    ("ClG", "Cluster of galaxies", None),
    ("X", "Unidentified X-ray source", None),
]
