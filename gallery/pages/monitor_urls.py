"""URL routes (filled in by its module owner)."""

urlpatterns: list = []
