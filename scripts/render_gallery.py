"""Render a gallery of synthetic cases to docs/gallery.png: per case, axial, coronal and sagittal
slices and a MIP, as a radiologist reads them, with the mask outline.

    python scripts/render_gallery.py [out=docs/gallery.png] [seed=0]

Options: conf/render_gallery.yaml.
"""

import hydra
from omegaconf import DictConfig


@hydra.main(version_base="1.3", config_path="../conf", config_name="render_gallery")
def main(cfg: DictConfig) -> None:
    from benchmarks.gallery import render_gallery

    from brainseg.cli import run_safely

    run_safely(render_gallery, cfg)


if __name__ == "__main__":
    main()
