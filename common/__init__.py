"""The contract producers and workers share: models, signing, sealing, topology, errors."""
