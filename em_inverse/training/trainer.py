"""The Energy Matching trainer: phase 1 (flow on -grad V), phase 2 (+ contrastive), EMA,
atomic checkpoints, bit-for-bit ``resume`` on the same kind of device (a run may also move
between GPU and CPU: it then continues with reseeded noise, and the model card lists each
stretch of hardware), JSONL log, plots, and ``torchrun`` data parallelism
(``training.distributed``: gloo on CPU, NCCL on GPU; every rank draws its own data, gradients
are averaged).

A run folder ``RUN/`` holds: ``weights.safetensors`` + ``config.json`` (the EMA prior, usable as
``--prior RUN``), ``checkpoint.safetensors`` (full training state), ``train_config.json``,
``log.jsonl``, and ``plots/`` (sample grids / scatter plots and energy histograms).
"""
from __future__ import annotations

import json
import math
import os
import time
from pathlib import Path

import torch
from tqdm.auto import tqdm

from em_inverse.atomic import atomic_write_bytes
from em_inverse.devices import make_generator
from em_inverse.errors import UserError
from em_inverse.priors.checkpoint import save_prior
from em_inverse.priors.nets import build_net, count_parameters
from em_inverse.priors.prior import EnergyPrior
from em_inverse.priors.registry import load_prior
from em_inverse.priors.sampling import annealed_langevin
from em_inverse.training import losses
from em_inverse.training.architecture import (check_architecture, check_architecture_fits,
                                              check_net_takes_data, default_architecture)
from em_inverse.training.config import TrainConfig
from em_inverse.training.datasets import make_dataset
from em_inverse.training.distributed import Distributed
from em_inverse.training.plots import write_plots
from em_inverse.training.state import (CHECKPOINT, load_checkpoint, restore_optimizer,
                                      save_checkpoint, section)
from em_inverse.training.stop_request import StopRequest
from em_inverse.training.widen import can_widen, widen_state


def data_description(dataset, arch: dict) -> dict:
    if dataset.kind_of_data == "vector":
        return {"kind": "vector", "dim": dataset.dim}
    image_size = list(dataset.image_size) if arch["type"] == "GlobalEnergy" else None
    return {"kind": "image", "channels": dataset.channels, "image_size": image_size,
            "training_size": list(dataset.image_size)}


def describe_hardware(device: torch.device, world: int) -> str:
    if device.type == "cuda":
        name = torch.cuda.get_device_name(device)
    else:
        threads = torch.get_num_threads()
        name = f"CPU ({threads} thread{'s' if threads != 1 else ''}, {os.cpu_count()} cores)"
    return f"{world} x {name}" if world > 1 else name


class Trainer:
    """Runs one Energy Matching training described by a ``TrainConfig`` into ``out``."""

    def __init__(self, config: TrainConfig, out: str | Path, device: torch.device,
                 quiet: bool = False):
        self.config = config
        self.out = Path(out)
        self.device = device
        self.quiet = quiet
        self.dist = Distributed(device)
        if device.type == "cuda" and self.dist.active:
            self.device = device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
            torch.cuda.set_device(device)
        self.hardware = describe_hardware(self.device, self.dist.world)  # for the model card
        self.dataset = make_dataset(config.data, crop=config.crop, data_dir=config.data_dir,
                                    channels=config.channels, augment=config.augment,
                                    scales=tuple(config.scales))
        self.arch = dict(config.arch) or default_architecture(self.dataset)
        check_architecture(self.arch)
        check_architecture_fits(self.arch, self.dataset)
        torch.manual_seed(config.seed)  # only affects weight initialisation
        try:
            net = build_net(self.arch).to(device)
        except (TypeError, ValueError) as exc:
            raise UserError(f"invalid architecture {self.arch}: {exc}") from None
        self.net = net
        vector = self.dataset.kind_of_data == "vector"
        self.scale, self.offset = (1.0, 0.0) if vector else (2.0, -1.0)
        # the backstop of the checks above, before a run writes anything
        check_net_takes_data(net, self.arch, self.dataset, self.scale, self.offset, device)
        self.dist.broadcast_parameters(net)
        self.optimizer = torch.optim.Adam(net.parameters(), lr=config.lr, betas=(0.9, 0.95))
        self.ema = {k: v.detach().clone() for k, v in net.state_dict().items()}
        # one generator for data (CPU) and one for noise (on the device), per rank
        rank_seed = config.seed * 1000 + self.dist.rank
        self.data_gen = make_generator(rank_seed)
        self.noise_gen = make_generator(rank_seed + 500, device)
        self.parent: dict | None = None  # the run a warm restart started from (for the card)
        self.step = 0
        self.first_step = 0  # the step this session started from (a resumed run's checkpoint)
        self.train_seconds = 0.0
        # [{"hardware", "first_step", "last_step", "seconds"}]: one entry per stretch of the run
        # on one kind of machine (a run started on a GPU can be finished on a CPU and back)
        self.segments: list[dict] = []

    def start_from(self, source: str | Path) -> dict:
        """Load this run's starting weights and EMA (same architecture, or a ConvEnergy of a
        smaller width, widened by ``widen_state``; same scale) from
        ``source``: a run folder's training checkpoint, or else a prior (a bundled name such as
        ``natural-gray``, or a prior folder), whose weights, an EMA already, start both: a
        fine-tune of a shipped prior. Returns the card's summary of where they come from: the
        folder or name, and the steps and seconds it trained in all (its own warm restarts
        included)."""
        run = Path(source)
        if (run / CHECKPOINT).is_file():
            tensors, meta = load_checkpoint(run / CHECKPOINT)
            arch = meta["extra"]["arch"]
            model, ema = section(tensors, "model."), section(tensors, "ema.")
            steps, seconds = meta["step"], meta["extra"].get("train_seconds", 0.0)
            earlier = meta["extra"].get("started_from")
        else:
            try:
                prior = load_prior(source)
            except UserError:
                raise UserError(f"cannot start from {source}: it holds no {CHECKPOINT} and is "
                                "not a prior (a bundled name or a prior folder)") from None
            if (prior.scale, prior.offset) != (self.scale, self.offset):
                raise UserError(f"cannot start from {source}: it maps data x to {prior.scale} x "
                                f"+ {prior.offset}, this run to {self.scale} x + {self.offset}")
            arch = getattr(prior.net, "config", None)
            model = ema = {k: v.contiguous() for k, v in prior.net.state_dict().items()}  # NCHW
            steps, seconds = (prior.training.get(k, 0) for k in ("trained_steps", "train_seconds"))
            earlier = prior.training.get("started_from")
        widened = can_widen(arch, self.arch)  # False for equal architectures
        if arch != self.arch and not widened:
            raise UserError(f"cannot start from {source}: its architecture {arch} differs from "
                            f"this run's {self.arch} (a ConvEnergy can start a wider one with "
                            "the same channels, levels and blocks)")
        if widened:  # the same fresh rows for the weights and their EMA
            fresh = {k: v.detach().cpu() for k, v in self.net.state_dict().items()}
            model, ema = widen_state(model, fresh), widen_state(ema, fresh)
        self.net.load_state_dict(model)
        self.dist.broadcast_parameters(self.net)
        self.ema = {k: v.detach().clone().to(self.device) for k, v in ema.items()}
        earlier = earlier or {"trained_steps": 0, "train_seconds": 0.0}
        parent = {"run": str(source), "trained_steps": steps + earlier["trained_steps"],
                  "train_seconds": round(seconds + earlier["train_seconds"], 1)}
        return parent | ({"widened_from_width": arch["width"]} if widened else {})

    # -- pieces of a step ------------------------------------------------------------------------
    def learning_rate(self, step: int) -> float:
        return self.config.learning_rate(step)

    def data_batch(self, n: int) -> torch.Tensor:
        x = self.dataset.sample(n, self.data_gen).to(self.device)
        return x * self.scale + self.offset

    def randn_like(self, x: torch.Tensor) -> torch.Tensor:
        return torch.randn(x.shape, generator=self.noise_gen, device=x.device, dtype=x.dtype)

    def rand(self, n: int) -> torch.Tensor:
        return torch.rand(n, generator=self.noise_gen, device=self.device)

    def in_phase2(self, step: int) -> bool:
        return step >= self.config.steps - self.config.phase2_length

    def negatives(self) -> torch.Tensor:
        """Langevin negatives: half started on data (t = 1), half on noise (t = 0)."""
        c = self.config
        n = c.negatives or c.batch_size
        n_data = n // 2
        from_data = self.data_batch(n_data)
        from_noise = torch.randn((n - n_data, *from_data.shape[1:]), generator=self.noise_gen,
                                 device=self.device)
        start = torch.cat([from_data, from_noise])
        t0 = torch.cat([torch.ones(n_data), torch.zeros(n - n_data)]).to(self.device)
        return annealed_langevin(self.net, start, t0, steps=c.langevin_steps, dt=c.langevin_dt,
                                 tau_star=c.tau_star, eps_max=c.eps_max, generator=self.noise_gen)

    def train_step(self, step: int) -> dict:
        c = self.config
        for group in self.optimizer.param_groups:
            group["lr"] = self.learning_rate(step)
        x1 = self.data_batch(c.batch_size)
        x0 = losses.ot_pair(self.randn_like(x1), x1)
        t = self.rand(c.batch_size)
        with_grad = [losses.interpolate(x0, x1, t)]
        if c.dsm_weight > 0:
            clean = self.data_batch(c.batch_size)
            log_sigma = torch.empty(c.batch_size, device=self.device).uniform_(
                math.log(c.dsm_sigma_min), math.log(c.dsm_sigma_max), generator=self.noise_gen)
            sigma = log_sigma.exp()
            z = self.randn_like(clean)
            with_grad.append(clean + sigma.view(-1, *([1] * (clean.ndim - 1))) * z)
        phase2 = self.in_phase2(step)
        without_grad = [self.data_batch(c.batch_size), self.negatives()] if phase2 else []
        # one forward pass over everything this step needs
        x_grad = torch.cat(with_grad).requires_grad_(True)
        energies = self.net(torch.cat([x_grad, *without_grad]))
        (grad_v,) = torch.autograd.grad(energies[:len(x_grad)].sum(), x_grad, create_graph=True)
        b = c.batch_size
        terms = {"flow": losses.flow_matching_loss(grad_v[:b], x0, x1, t, c.tau_star)}
        loss = terms["flow"]
        if c.dsm_weight > 0:
            terms["dsm"] = losses.denoising_score_loss(grad_v[b:2 * b], z, sigma, c.eps_max)
            loss = loss + c.dsm_weight * terms["dsm"]
        if phase2:
            v_data, v_neg = energies[len(x_grad):len(x_grad) + b], energies[len(x_grad) + b:]
            terms["cd"] = losses.contrastive_loss(v_data, v_neg, c.trim, c.beta)
            terms["e_data"], terms["e_neg"] = v_data.mean().detach(), v_neg.mean().detach()
            loss = loss + c.lambda_cd * terms["cd"]
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.dist.average_gradients(self.net)
        terms["grad_norm"] = torch.nn.utils.clip_grad_norm_(self.net.parameters(), c.clip)
        self.optimizer.step()
        self.update_ema()
        terms["loss"] = loss
        return {k: v.detach() for k, v in terms.items()}

    @torch.no_grad()
    def update_ema(self) -> None:
        """ema <- ema + (1 - ema_decay) (weights - ema), all floating tensors in one call."""
        live = self.net.state_dict()
        floats = [k for k, v in live.items() if v.dtype.is_floating_point]
        torch._foreach_lerp_([self.ema[k] for k in floats], [live[k] for k in floats],
                             1.0 - self.config.ema_decay)
        for key in live.keys() - set(floats):
            self.ema[key].copy_(live[key])

    def read_terms(self, terms: dict[str, torch.Tensor]) -> dict[str, float]:
        """The loss terms of the last step as floats: the one wait on the device that the loop
        makes outside the OT pairing, so it happens only when a step is logged or saved. Raises a
        ``UserError`` if any is not finite (a diverged step poisons the weights of every later
        one, so the first read after it catches it, before anything is saved)."""
        values = dict(zip(terms, torch.stack([v.float() for v in terms.values()]).tolist()))
        if not all(math.isfinite(v) for v in values.values()):
            raise UserError(f"training diverged by step {self.step} ({values}); "
                            "lower --lr or --eps-max")
        return values

    # -- saving ----------------------------------------------------------------------------------
    def ema_prior(self) -> EnergyPrior:
        net = build_net(self.arch)
        net.load_state_dict({k: v.cpu() for k, v in self.ema.items()})
        c = self.config
        recipe = {k: getattr(c, k) for k in (
            "data", "crop", "augment", "scales", "steps", "phase2_steps", "batch_size", "lr",
            "warmup", "lr_schedule", "ema_decay", "tau_star", "lambda_cd", "beta", "eps_max",
            "langevin_steps", "langevin_dt", "negatives", "trim", "dsm_weight", "dsm_sigma_min",
            "dsm_sigma_max", "seed")}
        recipe.update(trained_steps=self.step, world_size=self.dist.world,
                      train_seconds=round(self.train_seconds, 1), device=self.device.type)
        training_time = f"{self.train_seconds / 60:.1f} min for {self.step} steps"
        if self.parent is not None:
            recipe["started_from"] = self.parent
            total = (self.train_seconds + self.parent["train_seconds"]) / 60
            widened = self.parent.get("widened_from_width")
            training_time += (f" after {self.parent['trained_steps']} steps of "
                              f"{self.parent['run']} ({self.parent['train_seconds'] / 60:.1f} "
                              "min)" + (f", widened from width {widened}" if widened else "")
                              + f": {total:.1f} min in all")
        card = {"architecture": self.arch["type"], "parameters": count_parameters(net),
                "data": c.data + ("" if c.scales == [1.0] else
                                  " at scales " + ", ".join(f"{s:g}" for s in c.scales)),
                "hardware": self.hardware_summary(),
                "training_time": training_time,
                "recipe": "Energy Matching (phase 1 flow on -grad V, then "
                f"{c.phase2_length} contrastive steps)" + (
                    f" + denoising-score term (weight {c.dsm_weight})" if c.dsm_weight else "")}
        return EnergyPrior(net, eps=c.eps_max, scale=self.scale, offset=self.offset,
                           data=data_description(self.dataset, self.arch),
                           name=c.name or self.out.name, card=card, training=recipe)

    def record_segment(self, first_step: int, seconds: float) -> None:
        """Count ``seconds`` of training up to ``self.step`` towards this machine's segment."""
        last = self.segments[-1] if self.segments else None
        if (last is not None and last["hardware"] == self.hardware
                and last["last_step"] == first_step):
            last["last_step"] = self.step
            last["seconds"] += seconds
        else:
            self.segments.append({"hardware": self.hardware, "first_step": first_step,
                                  "last_step": self.step, "seconds": seconds})

    def hardware_summary(self) -> str:
        """'H' for a run on one machine kind, else 'steps a-b: H (m min); ...'."""
        if len({s["hardware"] for s in self.segments}) <= 1:
            return self.segments[0]["hardware"] if self.segments else self.hardware
        return "; ".join(f"steps {s['first_step']}-{s['last_step']}: {s['hardware']} "
                         f"({s['seconds'] / 60:.1f} min)" for s in self.segments)

    def save(self) -> None:
        if not self.dist.is_main:
            return
        self.out.mkdir(parents=True, exist_ok=True)
        save_checkpoint(self.out / CHECKPOINT, step=self.step, model=self.net, ema=self.ema,
                        optimizer=self.optimizer,
                        generators={"data": self.data_gen, "noise": self.noise_gen},
                        extra={"config": self.config.to_dict(), "arch": self.arch,
                               "train_seconds": self.train_seconds,
                               "segments": self.segments, "device": self.device.type,
                               "started_from": self.parent})
        save_prior(self.ema_prior(), self.out)

    def resume(self) -> None:
        """Restore the training state from ``out``'s checkpoint. Raises a ``UserError``, having
        written nothing, if it is missing or corrupt, holds more steps than ``config.steps``, or
        was trained with other options (``steps`` and how often to log, save and plot aside)."""
        tensors, meta = load_checkpoint(self.out / CHECKPOINT)
        done = meta["step"]
        if done > self.config.steps:
            raise UserError(f"cannot resume: {self.out} has already trained {done} steps, more "
                            f"than --steps {self.config.steps}; pass --steps {done} or more to "
                            "continue it")
        saved = meta["extra"]["config"]
        mine = self.config.to_dict()
        defaults = TrainConfig().to_dict()  # checkpoints older than an option hold its default
        changed = [k for k in mine if k not in ("steps", "checkpoint_every", "log_every",
                                                "sample_every")
                   and saved.get(k, defaults[k]) != mine[k]]
        if changed:
            raise UserError(f"cannot resume: options differ from the checkpoint ({', '.join(changed)})")
        self.net.load_state_dict(section(tensors, "model."))
        self.ema = {k: v.to(self.device) for k, v in section(tensors, "ema.").items()}
        restore_optimizer(self.optimizer, tensors, meta["optimizer"])
        self.step = self.first_step = done
        self.data_gen.set_state(tensors["rng.data"])
        if meta["extra"].get("device", "cpu") == self.device.type:
            self.noise_gen.set_state(tensors["rng.noise"])  # bit-for-bit continuation
        else:
            # a CUDA generator's state cannot seed a CPU one (and back): continue the run with
            # noise seeded from the step, still reproducible, no longer bit-identical
            self.noise_gen.manual_seed(self.config.seed * 1000 + self.dist.rank + 500 + self.step)
        self.train_seconds = meta["extra"].get("train_seconds", 0.0)
        self.segments = meta["extra"].get("segments", [])
        self.parent = meta["extra"].get("started_from")
        self.truncate_log()

    # -- logging ---------------------------------------------------------------------------------
    @property
    def log_path(self) -> Path:
        return self.out / "log.jsonl"

    def truncate_log(self) -> None:
        """Drop log lines written after the checkpoint we resume from (they will be redone)."""
        if self.dist.is_main and self.log_path.is_file():
            kept = [line for line in self.log_path.read_text().splitlines()
                    if line.strip() and json.loads(line)["step"] <= self.step]
            atomic_write_bytes(self.log_path, ("\n".join(kept) + "\n" if kept else "").encode())

    def log(self, record: dict) -> None:
        if self.dist.is_main:
            with self.log_path.open("a") as handle:
                handle.write(json.dumps(record) + "\n")

    # -- the loop --------------------------------------------------------------------------------
    def fit(self, resume: bool = False) -> EnergyPrior:
        c = self.config
        # both checked before anything is written to the run folder (or it is made)
        if resume:
            self.resume()
        elif c.init_from:
            self.parent = self.start_from(c.init_from)
        if self.dist.is_main:
            self.out.mkdir(parents=True, exist_ok=True)
            if not resume:
                self.log_path.unlink(missing_ok=True)
        self.dist.barrier()
        if self.dist.is_main:
            atomic_write_bytes(self.out / "train_config.json", json.dumps(c.to_dict(), indent=2).encode())
        bar = tqdm(total=c.steps, initial=self.step, disable=self.quiet or not self.dist.is_main,
                   desc=f"train {c.data}", dynamic_ncols=True)
        stop = StopRequest()
        terms = None
        try:
            while self.step < c.steps and not stop.requested:
                started = time.perf_counter()
                terms = self.train_step(self.step)
                seconds = time.perf_counter() - started
                self.train_seconds += seconds
                self.step += 1
                self.record_segment(self.step - 1, seconds)
                bar.update(1)
                logging = self.step % c.log_every == 0 or self.step == c.steps
                saving = self.step % c.checkpoint_every == 0
                if logging or saving:
                    values = self.read_terms(terms)
                if logging:
                    record = {"step": self.step, "phase": 2 if self.in_phase2(self.step - 1) else 1,
                              "lr": self.learning_rate(self.step - 1),
                              "seconds": round(self.train_seconds, 3), **values}
                    self.log(record)
                    bar.set_postfix({k: f"{v:.3g}" for k, v in values.items()
                                     if k in ("loss", "flow", "cd", "dsm")})
                if saving:
                    self.save()
                if c.sample_every and self.step % c.sample_every == 0 and self.dist.is_main:
                    write_plots(self, tag=f"step{self.step:06d}")
        finally:
            bar.close()
            stop.restore()
        if terms is not None:
            self.read_terms(terms)  # never save weights a step since the last read diverged
        self.save()  # at exit, including after SIGINT/SIGTERM (checked between steps)
        if stop.requested:
            raise KeyboardInterrupt
        if self.dist.is_main:
            write_plots(self, tag="final")
        self.dist.barrier()
        return self.ema_prior()
