"""ampere-qa: offline retrieval question answering over an article about Renault's Ampere.

The public API::

    from . import Retriever, build_index
    retriever = Retriever.load("index")
    retriever.answer("Qui dirige Ampere ?").to_dict()

Importing this package loads neither torch nor gradio; the model loads on first use.
"""

from .errors import (
    AmpereError,
    BadInputError,
    CorpusError,
    IndexMismatchError,
    IndexNotFoundError,
    IndexUnusableError,
    ModelError,
    StoreUnavailableError,
)
from .indexing.build import build_index
from .ingest.passages import SplitSettings
from .search import Retriever
from .types import Answer, BuildReport, Citation, Hit, Location, PageInfo, Passage
from .version import __version__

__all__ = [
    "AmpereError",
    "Answer",
    "BadInputError",
    "BuildReport",
    "Citation",
    "CorpusError",
    "Hit",
    "IndexMismatchError",
    "IndexNotFoundError",
    "IndexUnusableError",
    "Location",
    "ModelError",
    "PageInfo",
    "Passage",
    "Retriever",
    "SplitSettings",
    "StoreUnavailableError",
    "__version__",
    "build_index",
]
