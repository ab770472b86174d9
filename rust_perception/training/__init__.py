"""Training and evaluation of the SceneModel family (RUST, SRT, UpSRT)."""
