"""Notifications: the channels (``channels``), which state changes to tell and when
(``changes``), and the thread that tells them (``notifier``)."""
