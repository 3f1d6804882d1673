"""Colour priors built from gray ones: the gray energy on each opponent colour channel.

``opponent_prior(gray)`` wraps a trained one-channel, fully convolutional prior in an
``OpponentEnergy`` (``priors.nets``): V(x) = sum over the luminance and the two chroma channels
of V_gray. No new training: the gray energy, learned on luminance patches, also serves as the
chroma prior (chroma is a smooth gray image). Rebuild the bundled ``natural-rgb`` with

    em-inverse opponent natural-gray em_inverse/priors/bundled/natural-rgb --force
    em-inverse tune em_inverse/priors/bundled/natural-rgb
"""
from __future__ import annotations

from em_inverse.errors import UserError
from em_inverse.priors.nets import OpponentEnergy, count_parameters
from em_inverse.priors.prior import EnergyPrior


def opponent_prior(gray: EnergyPrior, name: str = "", chroma_weight: float = 1.0
                   ) -> EnergyPrior:
    """The 3-channel prior V(x) = sum_c V_gray((T x)_c) of ``gray`` (see ``OpponentEnergy``),
    its two chroma terms weighted by ``chroma_weight``; same temperature, internal scale and
    training record; no tuned solve defaults (run ``em-inverse tune`` on it)."""
    if gray.channels != 1 or gray.image_size is not None:
        raise UserError(f"prior {gray.name!r} is not a one-channel prior of any image size")
    if abs(gray.offset + gray.scale / 2) > 1e-9:
        # OpponentEnergy puts zero chroma at internal value 0: mid-gray must map there too.
        raise UserError(f"prior {gray.name!r} does not map mid-gray to 0 "
                        f"(scale {gray.scale:g}, offset {gray.offset:g})")
    net = OpponentEnergy(gray.net.config, chroma_weight=chroma_weight)
    net.channel_net.load_state_dict(gray.net.state_dict())
    card = {key: value for key, value in gray.card.items() if key not in ("tuning", "benchmark")}
    card.update(architecture="OpponentEnergy", parameters=count_parameters(net),
                colour=f"the gray prior {gray.name!r} on the opponent channels (luminance, "
                       "red-blue, green-magenta"
                       + (f"; chroma weighted {chroma_weight:g}" if chroma_weight != 1 else "")
                       + "); no colour training")
    return EnergyPrior(net, eps=gray.eps, scale=gray.scale, offset=gray.offset,
                       data=dict(gray.data, channels=3), name=name or f"{gray.name}-opponent",
                       card=card, training=dict(gray.training))
