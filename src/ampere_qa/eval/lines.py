"""The schema of one line of a set, in pydantic (imported only when a set is read).

Types are strict, so ``"gold": "Luca"`` is not read as five one-letter strings and
``"answerable": "false"`` is not true; fields beyond these are allowed and ignored.
"""

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictStr

from .sets import Group


class QuestionLine(BaseModel):
    """A line of a question set (see :mod:`ampere_qa.eval.sets`)."""

    model_config = ConfigDict(extra="allow", strict=True)
    id: StrictStr = Field(min_length=1)
    lang: StrictStr = Field(min_length=2)
    question: StrictStr = Field(min_length=1)
    gold: list[StrictStr]
    answerable: StrictBool
    group: Group | None = None
    short: list[StrictStr] = []


class DialogueLine(BaseModel):
    """A line of a dialogue set (see :mod:`ampere_qa.eval.dialogues`)."""

    model_config = ConfigDict(extra="allow", strict=True)
    id: StrictStr = Field(min_length=1)
    lang: StrictStr = Field(min_length=2)
    turns: list[StrictStr] = Field(min_length=2)
    gold: list[StrictStr] = Field(min_length=1)
    short: list[StrictStr] = []
