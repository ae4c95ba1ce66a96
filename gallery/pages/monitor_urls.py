"""Routes of the transient monitor: the page and its Atom feed."""

from django.urls import path

from . import monitor

app_name = "monitor"

urlpatterns = [
    path("monitor/", monitor.monitor, name="monitor"),
    path("monitor/feed.atom", monitor.TransientFeed(), name="feed"),
]
