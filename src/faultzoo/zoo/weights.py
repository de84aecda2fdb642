"""Where each zoo model's trained weights come from: data, not code.

One frozen descriptor per upstream checkpoint. URLs, sizes, sha256 digests, checkpoint formats and
claimed top-1 accuracies are facts about the upstream suite (cad-polito-it/dnn-benchmarks README tables
and its repository history; akamaster/pytorch_resnet_cifar10 for the ResNets it released). Plain git
blobs are served from raw.githubusercontent.com, Git LFS objects from media.githubusercontent.com.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import PurePosixPath

from faultzoo import _hub

_DNN = "cad-polito-it/dnn-benchmarks"
_AKA = "akamaster/pytorch_resnet_cifar10"
_TORCH = "torch/gpu/image_classification"


def _raw(repo: str, commit: str, path: str) -> str:
    return f"https://raw.githubusercontent.com/{repo}/{commit}/{path}"


def _lfs(repo: str, commit: str, path: str) -> str:
    return f"https://media.githubusercontent.com/media/{repo}/{commit}/{path}"


@dataclass(frozen=True)
class Weights:
    """A trained checkpoint of one zoo model: where to get it, how to check it, how to read it."""

    # -- source
    model_id: str
    urls: tuple[str, ...]
    sha256: str  # full digest, or the known prefix when only that is published
    size: int | None
    checkpoint_format: str  # a name in faultzoo.zoo.checkpoints.ADAPTERS
    # -- provenance
    repo: str
    commit: str
    path: str
    storage: str
    # -- metrics claimed upstream (percent, CIFAR/GTSRB test sets)
    claimed_top1: float
    notes: str = field(default="")

    @property
    def filename(self) -> str:
        """Cache file name with the hash in it: ``cifar10_resnet20-12fca82f.th``."""
        suffix = PurePosixPath(self.path).suffix
        return f"{self.model_id.replace('/', '_')}-{self.sha256[:8]}{suffix}"

    @property
    def full_hash_known(self) -> bool:
        return len(self.sha256) == 64

    def cached(self) -> bool:
        return (_hub.weights_dir() / self.filename).exists()

    def in_mirror(self) -> bool:
        return any((p := _hub.mirror_path(u)) is not None and p.is_file() for u in self.urls)

    def availability(self) -> str:
        """'cache', 'mirror' or 'download' (where the next get_model call would read it)."""
        return "cache" if self.cached() else "mirror" if self.in_mirror() else "download"

    def to_dict(self) -> dict:
        return {**asdict(self), "urls": list(self.urls), "filename": self.filename}


def _dnn_torch(model_id, commit, rel, sha, size, fmt, top1, *, lfs=True, alt=(), notes=""):
    path = f"{_TORCH}/{rel}"
    url = (_lfs if lfs else _raw)(_DNN, commit, path)
    return Weights(model_id, (url, *alt), sha, size, fmt, _DNN, commit, path,
                   "git-lfs" if lfs else "plain git blob", top1, notes)


def _aka(name: str) -> str:
    return _raw(_AKA, "master", f"pretrained_models/{name}")


_TH = "akamaster_th"
_SD = "state_dict"

WEIGHTS: dict[str, Weights] = {w.model_id: w for w in (
    _dnn_torch("cifar10/resnet20", "main", "CIFAR10/fp32/resnet/ResNet20.th",
               "12fca82f0bebc4135bf1f32f6e3710e61d5108578464b84fd6d7f5c1b04036c8", 1099231, _TH, 91.5,
               lfs=False, alt=(_aka("resnet20-12fca82f.th"),), notes="same bytes as akamaster resnet20-12fca82f.th"),
    _dnn_torch("cifar10/resnet32", "main", "CIFAR10/fp32/resnet/ResNet32.th",
               "d509ac1820d7f25398913559d7e81a13229b1e7adc5648e3bfa5e22dc137f850", 1890043, _TH, 92.3,
               lfs=False, alt=(_aka("resnet32-d509ac18.th"),), notes="same bytes as akamaster resnet32-d509ac18.th"),
    _dnn_torch("cifar10/resnet44", "main", "CIFAR10/fp32/resnet/ResNet44.th",
               "014dd6541728a1c700b1642ab640e211dc6eb8ed507d70697458dc8f8a0ae2e4", 2680855, _TH, 92.8,
               lfs=False, alt=(_aka("resnet44-014dd654.th"),), notes="same bytes as akamaster resnet44-014dd654.th"),
    _dnn_torch("cifar10/resnet56", "ba01215", "CIFAR10/fp32/resnet/ResNet56.th",
               "4bfd97631478d6b638d2764fd2baff3edb1d7d82252d54439343b6596b9b5367", 3471733, _TH, 93.3,
               lfs=False, alt=(_aka("resnet56-4bfd9763.th"),),
               notes="deleted upstream in 2ba0d72; same bytes as akamaster resnet56-4bfd9763.th"),
    Weights("cifar10/resnet110", (_aka("resnet110-1d1ed7c2.th"),), "1d1ed7c2", None, _TH, _AKA, "master",
            "pretrained_models/resnet110-1d1ed7c2.th", "plain git blob", 93.5,
            "only the first 8 hex digits of the sha256 are published: verified as a prefix"),
    _dnn_torch("cifar10/mobilenetv2", "main", "CIFAR10/fp32/mobilenet/MobileNetV2.pt",
               "761655c737615a2da93bc41ec5f4df675dbdf67ccfda4a1d1c6284a2aebff6e3", 9442897, "kuangliu_net", 91.7),
    _dnn_torch("cifar10/vgg11_bn", "main", "CIFAR10/fp32/vgg/Vgg11_bn.pt",
               "b92b952ecd5337b132bbdd668e25974308e7733e9b4cb2fa8677591d21d5c0d1", 112640861, _SD, 91.3),
    _dnn_torch("cifar10/vgg13_bn", "main", "CIFAR10/fp32/vgg/Vgg13_bn.pt",
               "bdc0bcff22b283688296765fa0db0f96783f46a4e16c2e7b85e3609890722234", 113386587, _SD, 93.8),
    _dnn_torch("cifar10/vgg16_bn", "ba01215", "CIFAR10/fp32/vgg/Vgg16_bn.pt",
               "9c10607463b05f9bf3b879eeb06f24e5ef80db2c25d7c3a0e642d6e4aa98cf5c", 134652824, _SD, 93.5,
               notes="deleted upstream in 2ba0d72"),
    _dnn_torch("cifar10/vgg19_bn", "ba01215", "CIFAR10/fp32/vgg/Vgg19_bn.pt",
               "651231f5bcdbff1500e0b1bb65b6a5a474e7c58dd8c5838cd838d52a206da4aa", 155919061, _SD, 93.2,
               notes="deleted upstream in 2ba0d72"),
    _dnn_torch("cifar10/densenet121", "main", "CIFAR10/fp32/densenet/DenseNet121.pt",
               "8d5c7e8d0383f660de7201d1b29c9964c0f4393394e6066460bee04a68f01173", 28435902, _SD, 93.2),
    _dnn_torch("cifar10/densenet161", "main", "CIFAR10/fp32/densenet/DenseNet161.pt",
               "595235a14e4f88c13873deb2dbe481bdf3d3e8ccceccf7a9aa1f3a6deb8f59a1", 107177326, _SD, 93.1),
    _dnn_torch("cifar10/googlenet", "main", "CIFAR10/fp32/googlenet/GoogLeNet.pt",
               "190ed2881ac6755eda62b17833d623b8052bd2e4693170fb64e78f632c34bcbb", 22139739, _SD, 92.2),
    _dnn_torch("cifar100/resnet18", "main", "CIFAR100/fp32/resnet/ResNet18_CIFAR100.pth",
               "fe825ea916e345b97530df9a38f6913cccecfe2a745d7b5798594d70ff080e0f", 44963876, _SD, 76.2),
    _dnn_torch("cifar100/densenet121", "main", "CIFAR100/fp32/densenet/DenseNet121_CIFAR100.pth",
               "1b1a8bc518e25ff2d18002419a0d1648906c0d4631beb679e2baf16c8577f525", 28837422, _SD, 78.7),
    _dnn_torch("cifar100/googlenet", "main", "CIFAR100/fp32/googlenet/GoogLeNet_CIFAR100.pth",
               "47dd468521b75b70f3313cdeeb66143b912ae6a920f5d05acd23456718633931", 25828614, _SD, 76.3),
    _dnn_torch("gtsrb/resnet20", "main", "GTSRB/fp32/resnet/ResNet20_GTSRB.pt",
               "94e19473ce86b93e48b92bddff1d51f0546d98618baaaf272f6f3499f875ede5", 1133178, _SD, 94.3),
    _dnn_torch("gtsrb/densenet121", "main", "GTSRB/fp32/densenet/DenseNet121_GTSRB.pt",
               "4ab223efbcfd6d4bc7180c78369a55266c1931e58b855f83cc262a49ef66a1f9", 28594192, _SD, 96.5),
    _dnn_torch("gtsrb/vgg11_bn", "main", "GTSRB/fp32/vgg/Vgg11_bn_GTSRB.pt",
               "84925779cdc7ec9d54dcee138a079c96713bb42e6ab1591ae6419248fd46aef5", 113182656, _SD, 95.5),
)}
