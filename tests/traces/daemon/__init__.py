"""Debian's oxenstored as the access-log format's oracle: stub, launcher, client, driver."""
