"""A sweep's Hydra runtime: the callbacks of `conf/train.yaml`, the joblib worker pool, and
what a composed config says of its sweep."""
