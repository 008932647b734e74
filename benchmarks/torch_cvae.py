"""A plain eager PyTorch training loop of the default CVAE, for benchmarks/bench_vs_torch.py.

Only torch and numpy (benchmarks/requirements-torch.txt), no cvae_tf: it runs in a virtualenv
of its own. The same network and loss terms as cvae_tf.model.CVAE.compute_losses with the
default flags: the momentum-frame rotation and normalization per batch, encoder and decoder
MLPs (exact gelu, keras' default), the Gaussian decoder's softly floored log-variance, β-NLL
weighting, β·KL, the hybrid term decoding z from the running latent distribution, Adam.

Run: python benchmarks/torch_cvae.py DATA.npz EPOCHS [THREADS] — prints one JSON line with each
epoch's seconds (the first one included: the caller drops it as the warm-up) and the last
batch's loss. THREADS (0: torch's default) sets torch.set_num_threads.
"""

import json
import math
import sys
import time

import numpy as np
import torch
from torch import nn

MIN_LOG_VARIANCE = -25.0  # cvae_tf.model.MIN_LOG_VARIANCE
FALLBACK_WEIGHT = 1e-9  # cvae_tf.frames._FALLBACK_WEIGHT
TINY = 1e-30
EPSILON = 1e-7  # keras.backend.epsilon(): Normalization divides by max(√variance, ε)
LOG_2PI = math.log(2.0 * math.pi)


def gaussian_network(inputs, sizes, outputs) -> nn.Module:
    """Dense `sizes` with gelu, then linear mean and log-variance heads (keras' glorot init)."""
    layers, width = [], inputs
    for size in sizes:
        layers += [nn.Linear(width, size), nn.GELU()]
        width = size
    body = nn.Sequential(*layers)
    heads = nn.ModuleList([nn.Linear(width, outputs) for _ in range(2)])
    for module in [*body, *heads]:
        if isinstance(module, nn.Linear):
            nn.init.xavier_uniform_(module.weight)
            nn.init.zeros_(module.bias)

    class Network(nn.Module):
        def __init__(self):
            super().__init__()
            self.body, self.heads = body, heads

        def forward(self, features):
            hidden = self.body(features)
            return self.heads[0](hidden), self.heads[1](hidden)

    return Network()


def unit(vectors):
    return vectors / vectors.norm(dim=-1, keepdim=True).clamp_min(TINY)


def reject(vectors, axis):
    return vectors - (vectors * axis).sum(-1, keepdim=True) * axis


def momentum_frame(momenta, fragments):
    """Rotations [batch, 3, 3] (axes as rows) from momenta [batch, n, 3]: cvae_tf.frames."""
    first, second, third = fragments
    x_axis = unit(momenta[:, first] - momenta[:, second])
    least_aligned = nn.functional.one_hot(x_axis.abs().argmin(-1), 3).to(x_axis.dtype)
    fallback = unit(reject(least_aligned, x_axis))
    y_axis = unit(reject(momenta[:, third], x_axis) + FALLBACK_WEIGHT * fallback)
    return torch.stack([x_axis, y_axis, torch.linalg.cross(x_axis, y_axis)], dim=1)


def gaussian_nll(targets, mean, log_variance):
    """Per coordinate ½·[(x − μ)²/σ² + log σ² + log 2π]."""
    return 0.5 * ((targets - mean).square() * torch.exp(-log_variance) + log_variance + LOG_2PI)


class CVAE(nn.Module):
    def __init__(self, statistics, fragments, hidden_dim=64, num_layers=3, latent_dim=4):
        super().__init__()
        sizes = [hidden_dim * 2**i for i in range(num_layers)]
        features = len(statistics["position_offset"])
        self.fragments, self.latent_dim = fragments, latent_dim
        self.encoder = gaussian_network(2 * features, sizes, latent_dim)
        self.decoder = gaussian_network(latent_dim + features, sizes[::-1], features)
        for name in ("position", "momentum"):
            offset = torch.tensor(statistics[f"{name}_offset"], dtype=torch.float32)
            scale = torch.tensor(statistics[f"{name}_variance"], dtype=torch.float32).sqrt()
            self.register_buffer(f"{name}_offset", offset)
            self.register_buffer(f"{name}_scale", scale.clamp_min(EPSILON))
        # The running latent statistics (cvae_tf.latent.LatentDistribution, aggregate_posterior).
        self.register_buffer("sums", torch.zeros(3, latent_dim))
        self.register_buffer("count", torch.zeros(()))
        self.register_buffer("latent_mean", torch.zeros(latent_dim))
        self.register_buffer("latent_std", torch.ones(latent_dim))

    def decode(self, latent_vectors, normalized_momenta):
        mean, log_variance = self.decoder(torch.cat([latent_vectors, normalized_momenta], -1))
        return mean, MIN_LOG_VARIANCE + nn.functional.softplus(log_variance - MIN_LOG_VARIANCE)

    def losses(self, momenta, positions, beta=1.0, nll_beta=0.5, prior_weight=0.5):
        """The objective of cvae_tf.model.CVAE.compute_losses with the default flags."""
        batch = len(momenta)
        rotations = momentum_frame(momenta.view(batch, -1, 3), self.fragments)

        def rotate(table):
            return torch.einsum("bij,bnj->bni", rotations, table.view(batch, -1, 3)).reshape(
                batch, -1
            )

        normalized_momenta = (rotate(momenta) - self.momentum_offset) / self.momentum_scale
        normalized_positions = (rotate(positions) - self.position_offset) / self.position_scale
        latent_mean, latent_log_var = self.encoder(
            torch.cat([normalized_positions, normalized_momenta], -1)
        )
        latent_vectors = latent_mean + torch.exp(0.5 * latent_log_var) * torch.randn_like(
            latent_mean
        )
        kl = -0.5 * (1 + latent_log_var - latent_mean.square() - latent_log_var.exp()).sum(-1)

        def objective(latents):
            mean, log_variance = self.decode(latents, normalized_momenta)
            weight = torch.exp(nll_beta * log_variance).detach()  # β-NLL
            return (weight * gaussian_nll(normalized_positions, mean, log_variance)).sum(-1).mean()

        encoded = objective(latent_vectors) + beta * kl.mean()
        prior = self.latent_mean + self.latent_std * torch.randn(batch, self.latent_dim)
        loss = (1.0 - prior_weight) * encoded + prior_weight * objective(prior)
        with torch.no_grad():  # the latent distribution's update_state
            self.sums += torch.stack(
                [latent_mean.sum(0), latent_mean.square().sum(0), latent_log_var.exp().sum(0)]
            )
            self.count += batch
            mean = self.sums[0] / self.count
            variance = (self.sums[1] / self.count - mean.square()).clamp_min(0.0)
            self.latent_mean.copy_(mean)
            self.latent_std.copy_((variance + self.sums[2] / self.count).sqrt())
        return loss


def epoch_seconds(path: str, epochs: int, batch_size: int = 256) -> tuple[list[float], float]:
    """Trains on the file's tables; each epoch's wall-clock seconds and the last batch's loss."""
    data = np.load(path)
    momenta = torch.from_numpy(data["momenta"].astype(np.float32))
    positions = torch.from_numpy(data["positions"].astype(np.float32))
    torch.manual_seed(0)
    statistics = {name: data[name] for name in data.files if name.endswith(("offset", "variance"))}
    cvae = CVAE(statistics, tuple(int(index) for index in data["fragments"]))
    optimizer = torch.optim.Adam(cvae.parameters(), lr=1e-3)
    seconds = []
    for _ in range(epochs):
        started = time.perf_counter()
        cvae.sums.zero_()  # callbacks.LatentStatisticsReset
        cvae.count.zero_()
        order = torch.randperm(len(momenta))
        for start in range(0, len(momenta), batch_size):
            rows = order[start : start + batch_size]
            loss = cvae.losses(momenta[rows], positions[rows])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
        if not math.isfinite(loss.item()):
            raise FloatingPointError(f"the PyTorch loss diverged: {loss.item()}")
        seconds.append(time.perf_counter() - started)
    return seconds, loss.item()


if __name__ == "__main__":
    if len(sys.argv) > 3 and int(sys.argv[3]):
        torch.set_num_threads(int(sys.argv[3]))
    seconds, loss = epoch_seconds(sys.argv[1], int(sys.argv[2]))
    print(json.dumps({"seconds": seconds, "loss": loss, "torch": torch.__version__}))
