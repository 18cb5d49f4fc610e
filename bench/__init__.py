"""Benchmarks and the local stack that runs them (`azr-exec bench`): not part of the product
path. bench imports executor and api, never the other way round."""
