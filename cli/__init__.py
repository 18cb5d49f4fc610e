"""`azr-exec`, the command line: the top layer, which may import every other package
(executor <- api <- bench <- cli); nothing imports it."""
