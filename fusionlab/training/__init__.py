"""Training: the LightningModule, initialisation, augmentation and the train/eval jobs."""
