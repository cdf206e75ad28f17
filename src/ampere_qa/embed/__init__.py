"""The embedding model: the bundled model's provisioning and export, the embedders."""
