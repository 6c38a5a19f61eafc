"""Objective algebra, built-in terms and user terms from files, modules and entry points."""

import textwrap

import pytest
import torch

from clipxai.errors import TermError
from clipxai.prompts import Prompt, encode_prompts
from clipxai.terms.base import Objective, Step, list_terms
from clipxai.terms.image import range_penalty, tv
from clipxai.terms.load import load_term, parse_term_option
from clipxai.terms.prompt import cosine, memory, spherical


def make_step(tiny_clip, image, texts=("a red heart",), state=None):
    prompts = encode_prompts(tiny_clip, [Prompt(t) for t in texts])
    feats = tiny_clip.encode_image(image).view(image.shape[0], 1, -1)
    return Step(index=0, image=image, views=image, features=feats, embeds=feats / feats.norm(dim=-1, keepdim=True),
                prompts=prompts, model=tiny_clip, param=None, state=state if state is not None else {})


def constant(value, name):
    return Objective(lambda step: torch.tensor(value), name)


def test_algebra_combines_values_and_names():
    a, b, c = constant(2.0, "a"), constant(3.0, "b"), constant(5.0, "c")
    obj = a - 0.5 * b + 2 * c
    total, values = obj(Step(0, torch.zeros(1, 3, 4, 4), None, None, None, [], None, None))
    assert total.item() == pytest.approx(2 - 1.5 + 10)
    assert values == {"a": torch.tensor([2.0]), "b": torch.tensor([3.0]), "c": torch.tensor([5.0])}
    assert obj.name == "a - 0.5*b + 2*c"
    assert (-a).name == "-a"
    dup = a + a
    assert dup.term_names() == ["a", "a#2"]


def test_terms_return_one_value_per_seed(tiny_clip):
    image = torch.rand(3, 3, 32, 32)
    step = make_step(tiny_clip, image)
    for obj in (cosine(), spherical(), tv(), tv("sum"), range_penalty(), memory()):
        total, _ = obj(step)
        assert total.shape == (3,)


def test_cosine_and_spherical_agree_on_ordering(tiny_clip):
    image = torch.rand(4, 3, 32, 32)
    step = make_step(tiny_clip, image)
    c = cosine()(step)[0]
    s = spherical()(step)[0]
    assert torch.equal(torch.argsort(c), torch.argsort(s))  # both monotone in the angle


def test_tv_and_range_values():
    flat = torch.full((1, 3, 8, 8), 0.5)
    stripes = flat.clone()
    stripes[..., ::2] = 1.5
    step_flat = Step(0, flat, flat, None, None, [], None, None)
    step_stripes = Step(0, stripes, stripes, None, None, [], None, None)
    assert tv()(step_flat)[0].item() == 0
    assert tv("sum")(step_stripes)[0].item() == pytest.approx(3 * 8 * 7 * 1.0)
    assert range_penalty()(step_flat)[0].item() == 0
    assert range_penalty()(step_stripes)[0].item() == pytest.approx(0.5 * 0.25)


def test_a_few_optimizer_steps_raise_a_term(tiny_clip):
    x = torch.rand(1, 3, 32, 32, requires_grad=True)
    opt = torch.optim.Adam([x], lr=0.02)
    obj = cosine("a red heart") - 0.1 * tv()
    first = None
    for _ in range(15):
        opt.zero_grad()
        total, _ = obj(make_step(tiny_clip, x))
        first = total.item() if first is None else first
        (-total.sum()).backward()
        opt.step()
    assert obj(make_step(tiny_clip, x))[0].item() > first + 0.02


def test_user_term_from_file_module_and_entry_point(tmp_path, monkeypatch):
    (tmp_path / "mylosses.py").write_text(textwrap.dedent('''
        import torch
        def brightness(step):
            """Mean pixel value."""
            return step.image.mean()
    '''))
    dist = tmp_path / "mylosses_plugin-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: mylosses-plugin\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text("[clipxai.losses]\nbright = mylosses:brightness\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    step = Step(0, torch.full((1, 3, 4, 4), 0.25), None, None, None, [], None, None)
    for spec in (f"{tmp_path / 'mylosses.py'}:brightness", "mylosses:brightness", "bright"):
        total, _ = load_term(spec)(step)
        assert total.item() == pytest.approx(0.25)
    listed = dict(list_terms())
    assert listed["bright"].startswith("Mean pixel value.")


@pytest.mark.parametrize("spec, message", [
    ("nope", "not a known term"),
    ("/missing/file.py:fn", "does not exist"),
    ("json:no_such_fn", "has no function named"),
    ("no_such_module_xyz:fn", "cannot be imported"),
])
def test_bad_loss_specs(spec, message):
    with pytest.raises(TermError, match=message):
        load_term(spec)


def test_broken_loss_file_and_weights(tmp_path):
    (tmp_path / "broken.py").write_text("raise RuntimeError('boom')\n")
    with pytest.raises(TermError, match="failed to import"):
        load_term(f"{tmp_path / 'broken.py'}:f")
    assert parse_term_option("tv=-0.5") == ("tv", -0.5)
    assert parse_term_option("pkg.mod:fn") == ("pkg.mod:fn", 1.0)
    with pytest.raises(TermError, match="not a number"):
        parse_term_option("tv=abc")
