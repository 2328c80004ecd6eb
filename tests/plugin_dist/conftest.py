"""The source of a plugin distribution that tests/test_plugins.py installs; nothing here is a test."""

collect_ignore_glob = ["*"]
