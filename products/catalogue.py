"""Instruments and product kinds the Gallery knows from the start (extensible in the admin)."""

# code, name, family, e_min_kev, e_max_kev, match radius (arcmin), default fit band (keV)
INSTRUMENTS = [
    ("isgri", "IBIS/ISGRI", "isgri", 15.0, 1000.0, 4.0, [30.0, 300.0]),
    ("jemx1", "JEM-X1", "jemx", 3.0, 35.0, 2.0, [3.0, 30.0]),
    ("jemx2", "JEM-X2", "jemx", 3.0, 35.0, 2.0, [3.0, 30.0]),
    ("spi_acs", "SPI-ACS", "spi_acs", 80.0, 10000.0, 0.0, []),
]

# code, name, category
PRODUCT_KINDS = [
    ("image", "sky image", "image"),
    ("spectrum", "spectrum", "spectrum"),
    ("lightcurve", "light curve", "lightcurve"),
    ("catalog", "source catalogue", "catalog"),
]
