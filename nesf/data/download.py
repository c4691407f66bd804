"""Download the datasets from the official repositories into a data directory, checking every file's SHA-256.

Files come from raw.githubusercontent.com over HTTPS:

- the paper's datasets from `omron-sinicx/neural-structure-field`, `data/dataset_paper/<folder>/<file>`. The data
  here were copied at commit f621903; its full hash was not available when this table was written, so the URLs use
  the branch `main` and every file is pinned by its SHA-256 instead (a changed upstream file fails the check);
- the CDVAE benchmarks from `txie-93/cdvae` at commit f857f598d6f6cca5dc1ea0582d228f12dcc2c2ea, `data/<name>/`.

Checksums were computed from the byte-for-byte copies described in `shared/data/SOURCES.md`. Files of 4 MiB or more
could not be copied there (the ICSG3D train `dataset.pkl`, the CDVAE `train.csv` files); their `sha256` is None and
they are only checked to be non-empty.

`base_url` replaces `https://raw.githubusercontent.com` (a mirror, or a local server in tests). Files are written to
a temporary file beside the target and moved into place (`os.replace`) only after their checksum matches; files
already present with the right checksum are not fetched again.
"""

from __future__ import annotations

import hashlib
import logging
import os
import tempfile
import urllib.error
import urllib.request
from collections.abc import Iterable
from pathlib import Path
from typing import NamedTuple

from nesf.core.errors import NesfError
from nesf.core.progress import Progress

logger = logging.getLogger(__name__)

RAW_BASE_URL = "https://raw.githubusercontent.com"
NESF_REPO, NESF_REF = "omron-sinicx/neural-structure-field", "main"  # copied at f621903; pinned by SHA-256 below
CDVAE_REPO, CDVAE_REF = "txie-93/cdvae", "f857f598d6f6cca5dc1ea0582d228f12dcc2c2ea"
SPLITS = ("train", "val", "test")
CHUNK_BYTES = 1 << 20


class RemoteFile(NamedTuple):
    path: str            # relative to the data directory, "/"-separated
    url: str             # https URL on raw.githubusercontent.com
    sha256: str | None   # hex digest; None where no copy was available to pin (checked non-empty only)


# SHA-256 of every file in shared/data (relative path -> hex digest).
_SHA256 = {
    "carbon_24/test.csv": "386b17c08816f434818d51e46687bf72ff3f92348f3ba24823e4758f1fe8a969",
    "carbon_24/val.csv": "36c00689cd63073c954a58bc6ed6e2adb7aeed5a630c994970959a1babffd50e",
    "nesf_paper/dataset_ICSG3D_test/dataset.pkl": "283859a9bcab8464bd70b15dd93c6c33864d4bbf7020ff8545ffb7df185768b1",
    "nesf_paper/dataset_ICSG3D_test/dataset_attr.json": "034f61a906caca7e2d790e6d3e441a22195d7603cfa36596e6e83dcd24f4c35a",
    "nesf_paper/dataset_ICSG3D_train/dataset_attr.json": "b4e4e508bcb6d0c3cddfe6196391c6ecade0b6cd1c1f1c006e7533f4ea1e619d",
    "nesf_paper/dataset_ICSG3D_val/dataset.pkl": "533628d128923b0b77840aedc52ec7b3277617cfa08a712d014baae66072da3d",
    "nesf_paper/dataset_ICSG3D_val/dataset_attr.json": "45fa20026f0934fc9dc7cdf0ca7335c3cc2938531894a897be702f081132a3d7",
    "nesf_paper/dataset_YBCO13_fold0_test/dataset.pkl": "c3f58c591767e50930619cc388c71c372e2b341f1300cc91431d00a74fddb5d0",
    "nesf_paper/dataset_YBCO13_fold0_test/dataset_attr.json": "24f3b228baf084cd011a4fcc13464c3300c253e45ab0e260d440c94e460d1ab5",
    "nesf_paper/dataset_YBCO13_fold0_train/dataset.pkl": "98b910419a470d61574710546fe1f983ac7b4d8e86cfa303f4ec2400aca0fbae",
    "nesf_paper/dataset_YBCO13_fold0_train/dataset_attr.json": "cf95f62a94075bf6be25d1c441623fbba69bb1e1acc39b7386295f99c934dd3f",
    "nesf_paper/dataset_YBCO13_fold0_val/dataset.pkl": "2471fb5429f561850d1800bf79d06d19921aeb6e5ed1b8ca2a4a2c5dbac6dd99",
    "nesf_paper/dataset_YBCO13_fold0_val/dataset_attr.json": "450ab84b0d353a34c911c882279f54daa0b8a29aa47156984c80c307d1404efb",
    "nesf_paper/dataset_YBCO13_fold10_test/dataset.pkl": "1402189efb24450fe332033f838e7bc861db385538a0d3c56a3d8b223baeb270",
    "nesf_paper/dataset_YBCO13_fold10_test/dataset_attr.json": "0597cd8e2ed94e8b2a18920500fc843c72730044e0384a44a2ddfa1d21cf9611",
    "nesf_paper/dataset_YBCO13_fold10_train/dataset.pkl": "64b412f25e5edcd250ecf2d9cee39244f56ad2479966be3fcef7bb0dfef8d5f1",
    "nesf_paper/dataset_YBCO13_fold10_train/dataset_attr.json": "6f09646d885ab6532fc01309e5d916b1f636cbcd6218b5ef5120d52b42e9a125",
    "nesf_paper/dataset_YBCO13_fold10_val/dataset.pkl": "9ad32d3137f201e4711c5b71d5227a4a922c5bdc5d5456dff8ab4aebd998c68a",
    "nesf_paper/dataset_YBCO13_fold10_val/dataset_attr.json": "3c54cee5480a2f24e4eb35f9cb3c80033976125b603dc6ab9a6221f853ce9b86",
    "nesf_paper/dataset_YBCO13_fold11_test/dataset.pkl": "3c729e3687d0cad28c563528eb8ce72c9b55da0eece95bbfca69b1c7ee5f3aba",
    "nesf_paper/dataset_YBCO13_fold11_test/dataset_attr.json": "cdd5ace6e9f4ae9befbf01e21a8c285ae17d6cb937f2c15834869932ad3cfb44",
    "nesf_paper/dataset_YBCO13_fold11_train/dataset.pkl": "c7f8797d3e2b90ec1b2d9bda32b28df41496213f1b9423272ef97282265cdc28",
    "nesf_paper/dataset_YBCO13_fold11_train/dataset_attr.json": "8b87774e65915bfab1086eeb0dc30fa7941ca4b0e4846ff01e09282dc186e188",
    "nesf_paper/dataset_YBCO13_fold11_val/dataset.pkl": "fc189fe74922f0c5a1df228e2037519ca362d5ae75136abd299d98b620bb0465",
    "nesf_paper/dataset_YBCO13_fold11_val/dataset_attr.json": "3437079314c6fd3ea30e0fb0f04be1515e6c8a54ed301bb8b4129a33741bef82",
    "nesf_paper/dataset_YBCO13_fold12_test/dataset.pkl": "0595805d3e0a950b17b8f5aae2efdf3de927d27a0b1d4619bd3c4600ae8f7ec8",
    "nesf_paper/dataset_YBCO13_fold12_test/dataset_attr.json": "e1d53225e38d6d909ee871f12ab2cd59b4000ef3a5ac8fe8e404aafa95c603b1",
    "nesf_paper/dataset_YBCO13_fold12_train/dataset.pkl": "115452040c071d064fa4a771ded4b224a86776acbf6155ca25afe2992b5021a1",
    "nesf_paper/dataset_YBCO13_fold12_train/dataset_attr.json": "5db4013a064edb51c2128eee38f33638d14acd411b0e49537a3796e614d9d63b",
    "nesf_paper/dataset_YBCO13_fold12_val/dataset.pkl": "7e6cfc9af9dd5b866af375516e4ed2bebe4df82b0c411d2fbdbe322ad35ebf90",
    "nesf_paper/dataset_YBCO13_fold12_val/dataset_attr.json": "3655e0870925049e5518ea77a405d7fc6206834377051f99305cb73e88041e29",
    "nesf_paper/dataset_YBCO13_fold13_test/dataset.pkl": "975485dc59b62a948fe55e22196f30861455ba267aa0499c388e7dbf28dac823",
    "nesf_paper/dataset_YBCO13_fold13_test/dataset_attr.json": "b1213f213f9a6bc2a7cb7dba772464baefbd88e30a9702f6453d958b6de0a63c",
    "nesf_paper/dataset_YBCO13_fold13_train/dataset.pkl": "4a1f078341b4260564a6a3bb24395a1ca2f7a2c51e5db9180a7b6eff176f669f",
    "nesf_paper/dataset_YBCO13_fold13_train/dataset_attr.json": "9de8b511c4ab9f3b35dd9202af70bf2097060fc1bc4a7730f848f806f550c62d",
    "nesf_paper/dataset_YBCO13_fold13_val/dataset.pkl": "49b9029ccd5476bf45cd22baf5d4eb64a62cdeebb1f0fb3791e04b432f2f8083",
    "nesf_paper/dataset_YBCO13_fold13_val/dataset_attr.json": "a6d3c7c6a2eaa55645517ccf23aa1f1d695a4b5fb428cdc28cf95f50e665b8e1",
    "nesf_paper/dataset_YBCO13_fold14_test/dataset.pkl": "db73eb48169e2f4a9a18557834529e4efafebb5739dee6ca372f3c62943e9092",
    "nesf_paper/dataset_YBCO13_fold14_test/dataset_attr.json": "aed98572e4d4ac836e82151808bc06da7ae223a45f18dd004a51241b3891250b",
    "nesf_paper/dataset_YBCO13_fold14_train/dataset.pkl": "a01a41dd77dbc64b90bda60266a3a36c63a6707819c978ffb2f04fde73c1dc0f",
    "nesf_paper/dataset_YBCO13_fold14_train/dataset_attr.json": "d1c4d564d0f9bb84b06300091988d7ccc00ff38b13e9716cca829464f2ee81e5",
    "nesf_paper/dataset_YBCO13_fold14_val/dataset.pkl": "062f5cf8318f1b8a6748a36c859cc9d076a48e18c9f6a476ac20eaded4887989",
    "nesf_paper/dataset_YBCO13_fold14_val/dataset_attr.json": "9dc10af8b12b7f4a499b42c52aa5f803309d57a0620c086e84ddfd60e9af2cfb",
    "nesf_paper/dataset_YBCO13_fold15_test/dataset.pkl": "436d200e734bfec00bade31bb1a1922d609aec76dc4f3372b74110f892c366d1",
    "nesf_paper/dataset_YBCO13_fold15_test/dataset_attr.json": "a9cb311c6b21716650f8082cca03d99fd1295300456e420750c294ce3d92ef65",
    "nesf_paper/dataset_YBCO13_fold15_train/dataset.pkl": "da6eaf3670ff8c86a56b39cccc0c1769c813af35341b27ba5cb49724fa3933d4",
    "nesf_paper/dataset_YBCO13_fold15_train/dataset_attr.json": "5bf6a2ce1dac1223841a0d6f7c1fe636c3879810aa2e992b23d0c8610aa0d70c",
    "nesf_paper/dataset_YBCO13_fold15_val/dataset.pkl": "61f61dbd452a16cc6cceca8c1913120ff1f8761df459d577b79af7ca6ab69856",
    "nesf_paper/dataset_YBCO13_fold15_val/dataset_attr.json": "05e70e4712d226c6197a3a09dad040459c6c6a433540193ebe47854fd81dd646",
    "nesf_paper/dataset_YBCO13_fold16_test/dataset.pkl": "b4a6986d1dc1117707aea97d1b8b217f5389a98a80b1ca6bc26a7aa272df4049",
    "nesf_paper/dataset_YBCO13_fold16_test/dataset_attr.json": "f6d22245c8717f4de7cd56e3ec573690793f8cfa139755c73b1a08f457264d5c",
    "nesf_paper/dataset_YBCO13_fold16_train/dataset.pkl": "fb2437e395296078f8e2a3931d3ae87f39cb8dd4b22ea555d4522a700600332f",
    "nesf_paper/dataset_YBCO13_fold16_train/dataset_attr.json": "09fc33e73dca893f3d086feb35c79a2ffb7fd89b99af1989c9dd1fcab89cff82",
    "nesf_paper/dataset_YBCO13_fold16_val/dataset.pkl": "9584951f40589ec70d724e1822f841c3383bb08745c892bfcbf3cc2114826d2b",
    "nesf_paper/dataset_YBCO13_fold16_val/dataset_attr.json": "ebd9f3bba5f884d63eaf2614c6d93cfd0954ef9c2d4ae54465305912434328d5",
    "nesf_paper/dataset_YBCO13_fold17_test/dataset.pkl": "9abe154d9c0143101066eb288d3d7962956d7461dd7870c60173242ca1d5559f",
    "nesf_paper/dataset_YBCO13_fold17_test/dataset_attr.json": "1af07125ef725f7b983b8c076878322c713f1937502a10adad95657665020b1d",
    "nesf_paper/dataset_YBCO13_fold17_train/dataset.pkl": "caa7b123db4553bd7b96dbd7ad3d91d9b37d5e421df2405275890275b3986070",
    "nesf_paper/dataset_YBCO13_fold17_train/dataset_attr.json": "b1c0772fd240344c5bdca709212b39aa19ca9c7e6707792398136596c262b1cf",
    "nesf_paper/dataset_YBCO13_fold17_val/dataset.pkl": "42f52adbc54615588c7be3d133ee88e92f74180ae073233f39972c9c645e761d",
    "nesf_paper/dataset_YBCO13_fold17_val/dataset_attr.json": "b5eb74cea8cc5a3cf59dc4bafd898e79389e86079963052f1771c3d621620652",
    "nesf_paper/dataset_YBCO13_fold18_test/dataset.pkl": "a68db3854ea2cb982fad6639ddc56035cf3b259c99265e9b82a3177c0db1045d",
    "nesf_paper/dataset_YBCO13_fold18_test/dataset_attr.json": "898879ceafef53a81a35db6d17b0abff2ef62ceed251034bfe99d7a8ee2fb3cc",
    "nesf_paper/dataset_YBCO13_fold18_train/dataset.pkl": "94ef9097097ff3fc8e96e5aab1539d20eeea27beab6267334b124bc9163e61be",
    "nesf_paper/dataset_YBCO13_fold18_train/dataset_attr.json": "d2e29b3a91bd13158246a4b3785819c5930e6ce852742ea79fdbada05a89f26b",
    "nesf_paper/dataset_YBCO13_fold18_val/dataset.pkl": "4ef96d79c787441ae0df0c67878537774b023ae3943ce35eab9cb0447c4a1a3c",
    "nesf_paper/dataset_YBCO13_fold18_val/dataset_attr.json": "bf50fbb2f53f272a049bf4b34abd0abff91cc9fb754c673ccf0dbdae7a3b8a34",
    "nesf_paper/dataset_YBCO13_fold19_test/dataset.pkl": "d3f740aa0aac69d096bd84f30a207a622b404d70da7b7fae38f5fa2914d392d1",
    "nesf_paper/dataset_YBCO13_fold19_test/dataset_attr.json": "c3b7dcdba05eb77acfdb725837091019041f93ca6b9f891263310fe89075acc0",
    "nesf_paper/dataset_YBCO13_fold19_train/dataset.pkl": "5612b3a5dee727ed7ea9b4c7e1cad426526b20c830367295889186bea9090989",
    "nesf_paper/dataset_YBCO13_fold19_train/dataset_attr.json": "0b75279ff909ab2db21933637f11c8b847121e5568dad768693041f726e0d03d",
    "nesf_paper/dataset_YBCO13_fold19_val/dataset.pkl": "5e60eb99946459498dec00a2d2da377f4d0b216e1d25beae3fff2910642ec25b",
    "nesf_paper/dataset_YBCO13_fold19_val/dataset_attr.json": "9b347c1f58ffe671383b6f36d767c14e8863f955cceac69a3d7e9252b42e9ae1",
    "nesf_paper/dataset_YBCO13_fold1_test/dataset.pkl": "e25f6734dcdcb7a9817d887f79c299b2ecdef56075365c9bc8ace212eeff3e33",
    "nesf_paper/dataset_YBCO13_fold1_test/dataset_attr.json": "e53cd6f92b5afa1f8bd806cb75676d4def8ea0846ed77c538d660123165c8a46",
    "nesf_paper/dataset_YBCO13_fold1_train/dataset.pkl": "08ddc436add467cc9b5af888c8efb254e6a70eec92236c7500ad564f7f2c238a",
    "nesf_paper/dataset_YBCO13_fold1_train/dataset_attr.json": "807147c59ebb9de88ff7baceb3a422aaeb65bc29c7b88b0094cde7f173441391",
    "nesf_paper/dataset_YBCO13_fold1_val/dataset.pkl": "04a609cd4733bf47a490931babc826e8eb62a013233066e5527bb6d024599f41",
    "nesf_paper/dataset_YBCO13_fold1_val/dataset_attr.json": "2e85c086d3b0b87d1d8a7e054f9c0ca3ff26dc76e1a04366736325b98c5bccc5",
    "nesf_paper/dataset_YBCO13_fold2_test/dataset.pkl": "22eacb60e9ac682f2cd20dd8180be8f7bc2f07be7c2b3908d95ee2a16c2a6ebf",
    "nesf_paper/dataset_YBCO13_fold2_test/dataset_attr.json": "f2e7c2e4c8497e06efa79840d949284171835cf2dc09b0dc3c47080611e96405",
    "nesf_paper/dataset_YBCO13_fold2_train/dataset.pkl": "2b6601a3d0929ac19cc460a9b68adb6c454f4dfa3508dd28d72cf4765f25e144",
    "nesf_paper/dataset_YBCO13_fold2_train/dataset_attr.json": "d43ab51a310e178ffe4b6eb4be427fc0b680fca1b84bcd94bba8ec8db9e66baf",
    "nesf_paper/dataset_YBCO13_fold2_val/dataset.pkl": "719163bc06798104ea71f7ead27759a2f2250a74bb383839067bc53fbd6ec3fc",
    "nesf_paper/dataset_YBCO13_fold2_val/dataset_attr.json": "1bc54b283c6da25e872b17cee557bae16c43a1682ebdf2ab5d7069e203eb3cc1",
    "nesf_paper/dataset_YBCO13_fold3_test/dataset.pkl": "2fe8a5503df9085d753b0b105e75880227e53d23dff234389a38d1cf9ec60efd",
    "nesf_paper/dataset_YBCO13_fold3_test/dataset_attr.json": "7ca30d9b0b5d9a0b086c92e4446cf9d9fd2ef12df8982a434e49df05edfee252",
    "nesf_paper/dataset_YBCO13_fold3_train/dataset.pkl": "eb0795b93a9acb976accade858cd378956190c109bb5ad90f1bd8cdcfe388211",
    "nesf_paper/dataset_YBCO13_fold3_train/dataset_attr.json": "d0918138e235b0d911892a46b9154cc4eacbe3cfd48e2332391600aa30975fc2",
    "nesf_paper/dataset_YBCO13_fold3_val/dataset.pkl": "ba459ad9b3b8b0eb8667765d2a802ac6f199a75aa1f64a853c6484a1aa0b37b8",
    "nesf_paper/dataset_YBCO13_fold3_val/dataset_attr.json": "a56c12c7b1e5878490095e7e8e0f52ff4335eb6515e0d47b34c613fc190d2808",
    "nesf_paper/dataset_YBCO13_fold4_test/dataset.pkl": "f902730448850f929dd51ac2f1a19969d800ee8e2cc2bff177c60339e6ed4266",
    "nesf_paper/dataset_YBCO13_fold4_test/dataset_attr.json": "d292bccf6cc8c197b1ef1292635999d0474ad0cebc97335afaa5a726ca5c1d73",
    "nesf_paper/dataset_YBCO13_fold4_train/dataset.pkl": "eb1451b952c079250616e5248e10667766b76eedec6c727867e89fed7ad15e9c",
    "nesf_paper/dataset_YBCO13_fold4_train/dataset_attr.json": "51a348dde336f4901989333b16c39066ad62cc7a55ba46c3cb330082b3b9fe9c",
    "nesf_paper/dataset_YBCO13_fold4_val/dataset.pkl": "e80099a6647edf30b71f4f0d1142397bd588b85726c0e2bb4f77f6f3667a6547",
    "nesf_paper/dataset_YBCO13_fold4_val/dataset_attr.json": "c601a31e71a7aeb4f4653a2de959a723276ba35f23b5f99f388f8050b9f3a95a",
    "nesf_paper/dataset_YBCO13_fold5_test/dataset.pkl": "a15b71748d1d87a9bae2ee1554420c085b4a51a5d2e42f2d0beb44ecbf36f009",
    "nesf_paper/dataset_YBCO13_fold5_test/dataset_attr.json": "16525fd375ccffc99f3762ac9ea1c4f064c41774bf0414a9cb7d6b9dabd530e8",
    "nesf_paper/dataset_YBCO13_fold5_train/dataset.pkl": "8225b49cd62f6cf1b1a38469cadbb3e2460a964a754481f26aa318b47606e283",
    "nesf_paper/dataset_YBCO13_fold5_train/dataset_attr.json": "c7c2f252f52fdb6e9a6e797389191779c6f4256141266433c8d25d1044bd4e88",
    "nesf_paper/dataset_YBCO13_fold5_val/dataset.pkl": "1a6bf9ebb09a68536933b58dc9c2191c7ad3ce5e9f6fb198a74276322721a09b",
    "nesf_paper/dataset_YBCO13_fold5_val/dataset_attr.json": "1620517599090f6d4838ecb826a076abb575273358383488a8938c331c2aa547",
    "nesf_paper/dataset_YBCO13_fold6_test/dataset.pkl": "0e1edb8a7fe1b053d7b042ee55aa3741cbd3cb91dd0ed7985e954188cd5c9048",
    "nesf_paper/dataset_YBCO13_fold6_test/dataset_attr.json": "447ec1956262977abcbd95efd80deffcd5cd644e3b6b7ce59c08d8383d6062c7",
    "nesf_paper/dataset_YBCO13_fold6_train/dataset.pkl": "a1c6aaae83ed531bebfded64fac657e9a25cbcbdcec7ec36d0f8d14cc915f581",
    "nesf_paper/dataset_YBCO13_fold6_train/dataset_attr.json": "4845f655b5f27fae960b78c5c0b113d89ab1faf373de02e9567bb4fcc3dfae33",
    "nesf_paper/dataset_YBCO13_fold6_val/dataset.pkl": "1748a2a310aae70480a07ae323ad0dfb33958556c6c906c33744ebb8325b912c",
    "nesf_paper/dataset_YBCO13_fold6_val/dataset_attr.json": "1d9767a5b107b157a031443710a06bee54a97519f62f24d3269eca104c848c0e",
    "nesf_paper/dataset_YBCO13_fold7_test/dataset.pkl": "4b62bce446b5bc1352d64422cece04065c14f365b18da242f1fd158c59f9d6f0",
    "nesf_paper/dataset_YBCO13_fold7_test/dataset_attr.json": "b1496a8f381d1381d804c0df54a0cf9f321b5927f352d088e33fa3e129c2a8dd",
    "nesf_paper/dataset_YBCO13_fold7_train/dataset.pkl": "11bed42635f0d191877ebc9256af687fa279f4fd44c3573ac4f9e284b501d85e",
    "nesf_paper/dataset_YBCO13_fold7_train/dataset_attr.json": "168c7b6c54aa1ecb86c0269ca0b4a47b7685f03cf377203e5a3cb81d828f5153",
    "nesf_paper/dataset_YBCO13_fold7_val/dataset.pkl": "52309886ee6a926433da4113dca878ff7501f663605a77dc088505c8085e4321",
    "nesf_paper/dataset_YBCO13_fold7_val/dataset_attr.json": "7f58a85a8bc3d0c41f08d8030391374e3f631ad515a0516633a7619a3e210a3f",
    "nesf_paper/dataset_YBCO13_fold8_test/dataset.pkl": "be298d27782632f59da45d42af295c82ad46a434541a16c63fae96467aba2fd5",
    "nesf_paper/dataset_YBCO13_fold8_test/dataset_attr.json": "08c31a5f26c9fcdd9d0c67edd8f0d473a2b178f05faff345ded925cfaa3d6163",
    "nesf_paper/dataset_YBCO13_fold8_train/dataset.pkl": "388ac39a5430e64669dc5b2eb46bd22dc568f5c0e74c5a3c18c0291bd52fcf8e",
    "nesf_paper/dataset_YBCO13_fold8_train/dataset_attr.json": "ed17999abc25840023d9ea7f3171cfba8bc3a371d8337b298dff43ff757d104c",
    "nesf_paper/dataset_YBCO13_fold8_val/dataset.pkl": "825241e54df15b0d3f10a7b63ddc808a15c28cba431bb2ffa82973631ac8c603",
    "nesf_paper/dataset_YBCO13_fold8_val/dataset_attr.json": "453562b79fb6adf7b912987f54b551bf303a9b173e85de6f6f461e1857db5f1b",
    "nesf_paper/dataset_YBCO13_fold9_test/dataset.pkl": "37d0730ca6466366e28e34d92d3fef1e24146f751e7880afdcac534af3a4d8a6",
    "nesf_paper/dataset_YBCO13_fold9_test/dataset_attr.json": "de4bd68b0e5d496740e035ece04cf1dc8d32fb8c4b7f7d5f968b08f049046092",
    "nesf_paper/dataset_YBCO13_fold9_train/dataset.pkl": "8305c0ba99ff6fe41574ceae7c3b94e71b98c613b84025f04a06dcf205c5ac21",
    "nesf_paper/dataset_YBCO13_fold9_train/dataset_attr.json": "9c7ecbd9f569867ad7e4181dd5c878cd6578b41de15232cdf0ee9cc13fcbb1c3",
    "nesf_paper/dataset_YBCO13_fold9_val/dataset.pkl": "3b29f258517e1cc6fcdcf4bdac7e34e606455448ceaa50029cd72556469bcc71",
    "nesf_paper/dataset_YBCO13_fold9_val/dataset_attr.json": "858855567e1b28a95d54c8e288de1c7c070a30648ecea8dc344538bd0482919e",
    "nesf_paper/dataset_lim_l6_test/dataset.pkl": "5c69d7e697fa88b967926ec57f9d3b1f1ad05e88b2c15b66eefb7c8deabad4f6",
    "nesf_paper/dataset_lim_l6_test/dataset_attr.json": "cf27f6861b44ed35cc413dd990daed300573587fba5b64a7bf394ad0a388dc3e",
    "nesf_paper/dataset_lim_l6_train/dataset.pkl": "c0d59678d99c3e2f48c1344dc0d1c8ed4917af71cab3c3b50f28d7838dbcf7c2",
    "nesf_paper/dataset_lim_l6_train/dataset_attr.json": "8f009aa0d73fe0c7d3bddf05f2dea42cf9b74e6fe426201442515426a26c2754",
    "nesf_paper/dataset_lim_l6_val/dataset.pkl": "6b1f56bae0d8eba2eb5c20105378504b6d7ffea8e24cfe0a87475e96f2c0ce5d",
    "nesf_paper/dataset_lim_l6_val/dataset_attr.json": "f54296d51f05c556e81511fb25216f3559cbceae1a4621da463abb8d335ea18d",
    "perov_5/test.csv": "a85878c685037f0a578257f6d4fcdde00e968dbab73c5f1e90ecef65218513f6",
    "perov_5/val.csv": "326f401219901270374b71e2faff63df3a29a99fd26f469993b9f476b693daf2",
}

PAPER_DATASETS = ("lim_l6", "ICSG3D", *(f"YBCO13_fold{k}" for k in range(20)))
CDVAE_DATASETS = ("perov_5", "carbon_24")
ALIASES = {"lcs6a": "lim_l6", "lcs6å": "lim_l6", "lcs6": "lim_l6"}


def _paper_files(name: str) -> list[RemoteFile]:
    files = []
    for split in SPLITS:
        for file in ("dataset.pkl", "dataset_attr.json"):
            folder = f"dataset_{name}_{split}"
            path = f"nesf_paper/{folder}/{file}"
            url = f"{RAW_BASE_URL}/{NESF_REPO}/{NESF_REF}/data/dataset_paper/{folder}/{file}"
            files.append(RemoteFile(path, url, _SHA256.get(path)))
    return files


def _cdvae_files(name: str) -> list[RemoteFile]:
    return [
        RemoteFile(f"{name}/{split}.csv", f"{RAW_BASE_URL}/{CDVAE_REPO}/{CDVAE_REF}/data/{name}/{split}.csv",
                   _SHA256.get(f"{name}/{split}.csv"))
        for split in SPLITS
    ]


DOWNLOADS: dict[str, list[RemoteFile]] = {
    **{name: _paper_files(name) for name in PAPER_DATASETS},
    **{name: _cdvae_files(name) for name in CDVAE_DATASETS},
}


def canonical_name(name: str) -> str:
    """The registry name of dataset `name` (case-insensitive; "LCS6A" -> "lim_l6")."""
    key = str(name).strip()
    lowered = key.lower()
    if lowered in ALIASES:
        return ALIASES[lowered]
    for known in DOWNLOADS:
        if known.lower() == lowered:
            return known
    raise NesfError(f"unknown dataset {name!r}; known: {', '.join(DOWNLOADS)} (alias LCS6A = lim_l6)")


def split_of(path: str) -> str:
    """The split ("train", "val" or "test") a DOWNLOADS path belongs to."""
    stem = path.rsplit("/", 2)[-2] if path.endswith((".pkl", ".json")) else path.rsplit("/", 1)[-1].split(".")[0]
    return stem.rsplit("_", 1)[-1]


def sha256_of(path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(CHUNK_BYTES), b""):
            digest.update(block)
    return digest.hexdigest()


def _is_current(target: Path, remote: RemoteFile) -> bool:
    if not target.is_file():
        return False
    if remote.sha256 is None:
        return target.stat().st_size > 0
    return sha256_of(target) == remote.sha256


def download(
    names: Iterable[str] | str,
    data_dir,
    *,
    splits: Iterable[str] | None = None,
    base_url: str | None = None,
    progress: Progress | None = None,
    timeout_s: float = 60.0,
) -> list[Path]:
    """Fetch the files of datasets `names` into `data_dir`; returns the paths of all their files (new or kept).

    splits: only these splits ("train", "val", "test"); None = all.
    base_url: replaces https://raw.githubusercontent.com (http or https).
    progress: `progress(fraction, message)` while each file downloads (fraction of the file, by the server's
        Content-Length; 1.0 once it is complete, with its size in the message).
    Raises NesfError for a checksum mismatch (the bad download is deleted), an HTTP or network failure, or an
    unknown dataset name.
    """
    if isinstance(names, str):
        names = [names]
    wanted = set(SPLITS if splits is None else splits)
    unknown = wanted - set(SPLITS)
    if unknown:
        raise NesfError(f"unknown split(s) {sorted(unknown)}; choose among {list(SPLITS)}")
    base = RAW_BASE_URL if base_url is None else str(base_url).rstrip("/")
    if not base.startswith(("https://", "http://")):
        raise NesfError(f"base_url must be an http(s) URL, got {base_url!r}")
    data_dir = Path(data_dir)

    paths = []
    for name in names:
        for remote in DOWNLOADS[canonical_name(name)]:
            if split_of(remote.path) not in wanted:
                continue
            target = data_dir / remote.path
            if _is_current(target, remote):
                logger.info("%s: present with the expected checksum, skipped", remote.path)
            else:
                url = base + remote.url[len(RAW_BASE_URL):]
                _fetch(url, target, remote, progress, timeout_s)
            paths.append(target)
    return paths


def _fetch(url: str, target: Path, remote: RemoteFile, progress, timeout_s: float) -> None:
    logger.info("downloading %s -> %s", url, target)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".part")
    tmp = Path(tmp_name)
    try:
        digest, done = hashlib.sha256(), 0
        request = urllib.request.Request(url, headers={"User-Agent": "nesf-explorer"})
        try:
            with os.fdopen(fd, "wb") as out, urllib.request.urlopen(request, timeout=timeout_s) as response:
                total = int(response.headers.get("Content-Length") or 0)
                while block := response.read(CHUNK_BYTES):
                    out.write(block)
                    digest.update(block)
                    done += len(block)
                    if progress is not None and total and done < total:
                        progress(done / total, f"{remote.path}: {done / 1e6:.2f} MB")
            if progress is not None:
                progress(1.0, f"{remote.path}: {done / 1e6:.2f} MB")
        except urllib.error.HTTPError as exc:
            raise NesfError(f"{remote.path}: download failed, HTTP {exc.code} {exc.reason} for {url}") from exc
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise NesfError(f"{remote.path}: download failed for {url} ({reason})") from exc
        if remote.sha256 is None:
            if done == 0:
                raise NesfError(f"{remote.path}: downloaded file from {url} is empty; not kept")
            logger.warning("%s: no pinned checksum (file was not available when pinning); kept unchecked", remote.path)
        elif digest.hexdigest() != remote.sha256:
            raise NesfError(
                f"{remote.path}: checksum mismatch for {url}: sha256 {digest.hexdigest()}, expected {remote.sha256}; "
                f"the download was deleted"
            )
        os.replace(tmp, target)
    finally:
        if tmp.exists():
            tmp.unlink()
