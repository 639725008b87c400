"""homofit: fine-tune pretrained language models from one validated YAML spec."""

__version__ = "0.1.0"
