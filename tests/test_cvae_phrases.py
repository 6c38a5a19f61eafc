"""Attributes become sentences: the phrase table, the fixed order, parsing back, the toy captions."""

import numpy as np
import pytest

from clipxai.generators.cvae.fixture import ATTRIBUTES, record_row
from clipxai.generators.cvae.phrases import (
    CELEBA_RULES,
    SentenceBuilder,
    UnknownAttributeWarning,
    phrase_table_markdown,
)
from clipxai.toy import world

CELEBA = ("5_o_Clock_Shadow Arched_Eyebrows Attractive Bags_Under_Eyes Bald Bangs Big_Lips Big_Nose "
          "Black_Hair Blond_Hair Blurry Brown_Hair Bushy_Eyebrows Chubby Double_Chin Eyeglasses Goatee "
          "Gray_Hair Heavy_Makeup High_Cheekbones Male Mouth_Slightly_Open Mustache Narrow_Eyes No_Beard "
          "Oval_Face Pale_Skin Pointy_Nose Receding_Hairline Rosy_Cheeks Sideburns Smiling Straight_Hair "
          "Wavy_Hair Wearing_Earrings Wearing_Hat Wearing_Lipstick Wearing_Necklace Wearing_Necktie Young").split()


def row(names, on):
    """+1 for the attributes in ``on``, -1 elsewhere (No_Beard +1 unless 'beard' is asked for)."""
    return [1 if n in on else -1 for n in names]


def test_every_celeba_attribute_has_a_rule_and_the_table_lists_it():
    assert len(CELEBA) == 40 and set(CELEBA) == set(CELEBA_RULES)
    table = phrase_table_markdown()
    assert all(f"| {name} |" in table for name in CELEBA)


@pytest.mark.parametrize("on, expected", [
    ({"Male", "Smiling", "Eyeglasses", "No_Beard"}, "a smiling man wearing eyeglasses"),
    ({"Smiling", "Eyeglasses", "No_Beard"}, "a smiling woman wearing eyeglasses"),
    ({"Male"}, "a man with a beard"),
    ({"No_Beard", "High_Cheekbones", "Wearing_Lipstick", "Attractive", "Young"},
     "an attractive young woman with high cheekbones, wearing lipstick"),
    ({"Male", "No_Beard", "Blond_Hair", "Bangs", "Pale_Skin", "Wearing_Hat", "Wearing_Necktie"},
     "a man with blond hair, bangs and pale skin, wearing a hat and a necktie"),
])
def test_celeba_rows_read_as_sentences(on, expected):
    assert SentenceBuilder(CELEBA).sentence(row(CELEBA, on)) == expected


def test_the_order_is_fixed_by_the_table_not_by_the_columns():
    on = {"Male", "No_Beard", "Smiling", "Wavy_Hair", "Eyeglasses", "Young", "Wearing_Earrings"}
    shuffled = list(np.random.default_rng(0).permutation(CELEBA))
    a = SentenceBuilder(CELEBA).sentence(row(CELEBA, on))
    b = SentenceBuilder(shuffled).sentence(row(shuffled, on))
    assert a == b == "a smiling young man with wavy hair, wearing eyeglasses and earrings"


def test_parse_inverts_the_sentence_of_any_row():
    builder = SentenceBuilder(CELEBA)
    rng = np.random.default_rng(1)
    for values in rng.choice([-1, 1], size=(200, 40)):
        assert builder.parse(builder.sentence(values)) == [float(v) for v in values]


def test_parse_reads_free_text_and_leaves_an_unsaid_two_sided_attribute_at_zero():
    builder = SentenceBuilder(CELEBA)
    got = dict(zip(CELEBA, builder.parse("A smiling woman, wearing eyeglasses!")))
    assert got["Smiling"] == got["Eyeglasses"] == 1.0 and got["Male"] == -1.0
    assert got["No_Beard"] == 1.0 and got["Wearing_Hat"] == -1.0
    assert dict(zip(CELEBA, builder.parse("a smiling person")))["Male"] == 0.0


def test_toy_rows_read_like_the_worlds_own_captions():
    builder = SentenceBuilder(ATTRIBUTES)
    records = world.sample_records(300, np.random.default_rng(2), pair_fraction=0.0)
    for r in records:
        sentence = builder.sentence(record_row(r))
        if r.concept is None:
            assert sentence == world.describe(r)
        else:  # planted concepts are big and centred: "a big red heart in the center"
            assert sentence == f"a big {r.colour} {r.shape} in the center"
    assert any(r.concept == "heart" for r in records)


def test_an_unknown_attribute_is_kept_with_a_default_phrase_and_a_warning():
    with pytest.warns(UnknownAttributeWarning, match="Freckles"):
        builder = SentenceBuilder(["Male", "Freckles", "No_Beard"])
    assert builder.sentence([-1, 1, 1]) == "a woman with freckles"
    assert builder.sentence([-1, -1, 1]) == "a woman"
