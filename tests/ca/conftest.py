"""Two CAs, Cloud and Kubernetes, shared by every test of this folder (started once,
stopped after the last): each lists the other's root in "federatedRoots" (Cloud lists its own
root as well, to prove /federation deduplicates). Kubernetes issues two-minute leaves."""

import pytest

from ca.helpers import CA, serving


@pytest.fixture(scope="package")
def cas(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("cas")
    cloud, kube = CA(tmp, "Cloud"), CA(tmp, "Kubernetes")
    cloud.edit(lambda c: c.update(federatedRoots=[str(kube.root), str(cloud.root)],
                                  requestTimeout="2s"))

    def kube_cfg(c):
        c["federatedRoots"] = [str(cloud.root)]
        c["requestTimeout"] = "2s"
        c["authority"]["claims"] = {"defaultTLSCertDuration": "2m"}

    kube.edit(kube_cfg)
    with serving(cloud, kube):
        yield cloud, kube


@pytest.fixture
def cloud(cas):
    return cas[0]


@pytest.fixture
def kube(cas):
    return cas[1]
