"""Generator families: the pool's AI groups gathered into the families a user can recognise.

A family is a maker's line of models (GPT-4o / gpt-image, Gemini / Imagen, FLUX, Midjourney …) or an
architecture lineage (Stable Diffusion 1.x/2.x and its fine-tunes, the SDXL family, SD 3.x). Groups that
fit none, or whose family has too few images to learn, go to "other diffusion"; the 2021–22 research
generators of one gallery form their own family. The family head is trained on these labels and the
artifact's metadata carries the table, so the service can name the family it predicts.
"""

from __future__ import annotations

# family id → (display name, the pool's groups in it)
FAMILIES: dict[str, tuple[str, tuple[str, ...]]] = {
    "gpt-image": ("GPT-4o / gpt-image (OpenAI)", ("gpt-4o-image",)),
    "dall-e": ("DALL·E 2 / 3 (OpenAI)", ("dall-e-2", "dall-e-3")),
    "gemini-imagen": ("Gemini / Imagen (Google)", ("gemini-2.5-flash-image", "gemini-3-pro-image", "imagen-3")),
    "flux": ("FLUX (Black Forest Labs)", ("flux-1",)),
    "midjourney": ("Midjourney", ("midjourney-v3", "midjourney-v5", "midjourney-v5.2")),
    "ideogram": ("Ideogram", ("ideogram",)),
    "sd-1-2": ("Stable Diffusion 1.x / 2.x and fine-tunes", ("stable-diffusion-1.x", "sd-2.x", "realistic-vision-v4")),
    "sdxl": (
        "SDXL family (SDXL and its fine-tunes and distillations)",
        (
            "sdxl",
            "sdxl-0.9",
            "sdxl-lightning",
            "ssd-1b",
            "segmind-vega",
            "juggernaut-xl",
            "realvisxl",
            "thinkdiffusion-xl",
            "playground-v2",
            "playground-v2.5",
        ),
    ),
    "sd-3": ("Stable Diffusion 3.x", ("sd3", "sd-3.5", "sd-3.5-large", "sd-3.5-medium")),
    "gan": ("GAN (StyleGAN faces)", ("stylegan2-ada",)),
    "early-open": (
        "Early open text-to-image (2021–22: DALL·E mini, latent / GLID-3 / Disco / Majesty diffusion, VQGAN-CLIP)",
        ("dalle-mini", "latent-diffusion", "glid-3-xl", "disco-diffusion", "majesty-diffusion", "vqgan-clip"),
    ),
}
OTHER = "other-diffusion"
OTHER_NAME = "Other diffusion models (Kandinsky, Hunyuan, PixArt, Sana, Wan, CogView, Lumina, …)"
_BY_GROUP = {group: family for family, (_, groups) in FAMILIES.items() for group in groups}


def family_of(group: str) -> str:
    """The family id of an AI group (OTHER for groups no family names)."""
    return _BY_GROUP.get(group, OTHER)


def family_ids() -> list[str]:
    """Every family id, in a fixed order (the order of the family head's outputs)."""
    return [*FAMILIES, OTHER]


def family_names() -> dict[str, str]:
    """{family id: display name}."""
    return {**{family: name for family, (name, _) in FAMILIES.items()}, OTHER: OTHER_NAME}
