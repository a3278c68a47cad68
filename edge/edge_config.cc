// Implemented by the config work; see edge_config.h.
