"""Networks: every registered model is covered by one parametrised test; parameter counts."""

import json

import pytest
import torch

from lightbunny.models import MODELS, build_model, count_parameters, model_from_config

# Tiny sizes for every registered network. A model registered without an entry here fails
# test_model_contract (the test is parametrised over the registry itself).
TINY = {
    "lightbunny": dict(n_chans=5, n_times=20, n_sources=6, d_model=16, chunk_size=5, dropout=0.1),
    "deepsif": dict(n_chans=5, n_times=20, n_sources=6, n_hidden=8, n_lstm_layers=2),
    "bunny": dict(n_chans=5, n_times=20, n_sources=6, d_model=8, chunk_size=5, dropout=0.1),
}


@pytest.mark.parametrize("name", sorted(MODELS))
def test_model_contract(name):
    assert name in TINY, f"model {name!r} is registered but has no tiny test case in TINY"
    assert sorted(TINY) == sorted(MODELS), "TINY lists a model that is not registered"
    kwargs = TINY[name]
    net = build_model(name, random_state=0, **kwargs)
    batch, n_times, n_chans = 3, kwargs["n_times"], kwargs["n_chans"]
    n_sources = kwargs["n_sources"]
    x = torch.randn(batch, n_times, n_chans, generator=torch.Generator().manual_seed(1))

    # shapes
    out = net(x)
    assert out.shape == (batch, n_times, n_sources)
    assert out.dtype == torch.float32 and torch.isfinite(out).all()

    # gradients reach every parameter
    out.square().mean().backward()
    for pname, p in net.named_parameters():
        assert p.grad is not None, f"{name}: no gradient for {pname}"
        assert torch.isfinite(p.grad).all(), f"{name}: non-finite gradient for {pname}"
        assert p.grad.abs().sum() > 0, f"{name}: zero gradient for {pname}"

    # config: plain JSON, explicit keywords, rebuilds an identical network
    config = net.get_config()
    assert json.loads(json.dumps(config)) == config
    assert {k: config[k] for k in kwargs} == kwargs
    clone = model_from_config(name, config)
    assert clone.get_config() == config
    clone.load_state_dict(net.state_dict())
    net.eval(), clone.eval()
    with torch.no_grad():
        torch.testing.assert_close(clone(x), net(x), rtol=0, atol=0)

    # seeded construction is reproducible and leaves the global generator alone
    state = torch.get_rng_state()
    again = build_model(name, random_state=0, **kwargs)
    assert torch.equal(torch.get_rng_state(), state)
    for (k, a), b in zip(net.state_dict().items(), again.state_dict().values()):
        assert torch.equal(a, b), k

    # wrong input shapes are explained
    with pytest.raises(ValueError, match="n_chans"):
        net(torch.zeros(1, n_times, n_chans + 1))
    if "chunk_size" in kwargs:
        with pytest.raises(ValueError, match=r"multiple of chunk_size \(5\)"):
            build_model(name, **{**kwargs, "n_times": 22})


def test_unknown_model_name():
    with pytest.raises(ValueError, match="Invalid model 'lightbuny'.*Did you mean 'lightbunny'"):
        build_model("lightbuny")


def test_parameter_counts_at_seed_defaults():
    """Seed defaults: 64 channels, 500 samples, 994 regions, d_model 256, chunk 25, dropout 0.2."""
    sizes = dict(n_chans=64, n_times=500, n_sources=994)
    hyper = {"lightbunny": dict(d_model=256, chunk_size=25, dropout=0.2),
             "deepsif": dict(n_hidden=500, n_lstm_layers=3),
             "bunny": dict(d_model=256, chunk_size=25, dropout=0.2)}
    counts = {}
    with torch.device("meta"):  # shapes only, no memory or initialisation cost
        for name in sorted(MODELS):
            counts[name] = count_parameters(build_model(name, **sizes, **hyper[name]))
    for name, n in counts.items():
        print(f"{name}: {n:,} parameters ({n / 1e6:.2f} M) at 64 channels, 500 samples, "
              f"994 regions")
    assert counts["lightbunny"] == 5_064_360  # the seed's torchinfo summary
    assert f"{counts['lightbunny'] / 1e6:.2f}" == "5.06"
    assert f"{counts['deepsif'] / 1e6:.1f}" == "22.1"
    assert counts["bunny"] == 4_316_849
