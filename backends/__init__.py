"""Training backends of pruning-spec; each depends on the core, never the other way round."""
