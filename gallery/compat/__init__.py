"""The endpoints of the previous gallery's dispatcher (``/dispatch-data/``), so that the
unmodified ``oda_api.gallery_api.GalleryDispatcherAPI`` client works against the Gallery."""
