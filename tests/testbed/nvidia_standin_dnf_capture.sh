#!/bin/sh
# SPDX-License-Identifier: GPL-3.0-or-later
# Captures the dnf fixtures tests/unit/fixtures/dnf/nvidia-{rhel9,nonmodular}-* : real dnf 4 (Debian's dnf, the
# build_tools_dnf test bed) against STAND-IN NVIDIA RPMs (NVIDIA's names, epoch 3, real-shaped versions of branches
# 580, 590 and 595, NVIDIA's dependency shapes: the metas nvidia-open and cuda-drivers require their components '>=',
# the components one another '='), with nvidia-driver module streams up to 580 only (modules.yaml in genmodules.py's
# shape), then without module metadata (as RHEL 10 and Fedora trees are). Not NVIDIA's repository, not a RHEL host.
#
#   docker run -d --network host --name dnfcap mlhost-testbed/debian12 sleep 3600
#   docker cp tests/testbed/nvidia_standin_dnf_capture.sh dnfcap:/tmp/ && docker exec dnfcap sh /tmp/nvidia_standin_dnf_capture.sh
#   docker cp dnfcap:/tmp/cap OUTDIR
set -e
export DEBIAN_FRONTEND=noninteractive
apt-get update -q >/dev/null && apt-get install -y -q --no-install-recommends dnf dnf-plugins-core rpm createrepo-c >/dev/null
mkdir -p /etc/dnf/plugins && printf '[main]\nenabled=0\n' > /etc/dnf/plugins/local.conf  # Debian's "local" plugin adds a repository
mk() { name=$1 ver=$2 req=$3
cat > "/tmp/spec-$name-$ver.spec" <<SPEC
Name: $name
Epoch: 3
Version: $ver
Release: 1.el9
Summary: stand-in $name
License: MIT
BuildArch: noarch
$req
%description
stand-in
%install
mkdir -p %{buildroot}/usr/share/mlhost-standin
echo $name $ver > %{buildroot}/usr/share/mlhost-standin/$name
%files
/usr/share/mlhost-standin/$name
SPEC
rpmbuild -bb --define "_topdir /tmp/rpmtop" --define "dist .el9" "/tmp/spec-$name-$ver.spec" >/dev/null 2>&1 || rpmbuild -bb --define "_topdir /tmp/rpmtop" "/tmp/spec-$name-$ver.spec"
}
for v in 580.105.08 590.48.01 595.45.04 595.71.05; do
  mk nvidia-driver $v ""
  mk nvidia-driver-cuda $v "Requires: nvidia-driver = 3:$v"
  mk kmod-nvidia-open-dkms $v "Requires: nvidia-driver >= 3:$v"
  mk kmod-nvidia-latest-dkms $v ""
  mk nvidia-open $v "Requires: nvidia-driver-cuda >= 3:$v
Requires: kmod-nvidia-open-dkms >= 3:$v"
  mk cuda-drivers $v "Requires: nvidia-driver-cuda >= 3:$v
Requires: kmod-nvidia-latest-dkms >= 3:$v"
done
mkdir -p /srv/repo /etc/yum.repos.d && cp /tmp/rpmtop/RPMS/noarch/*.rpm /srv/repo/ && createrepo_c -q /srv/repo
cat > /etc/yum.repos.d/standin.repo <<R
[cuda-rhel9-x86_64]
name=stand-in cuda-rhel9-x86_64
baseurl=file:///srv/repo
gpgcheck=0
enabled=1
R
printf '[cuda-rhel9-x86_64]\nname=stand-in cuda-rhel9-x86_64\nbaseurl=file:///srv/repo\ngpgcheck=0\nenabled=1\n' > /etc/yum.repos.d/standin.repo
y=/tmp/modules.yaml; : > $y
stream() { s=$1 v=$2 kmod=$3
cat >> $y <<Y
---
document: modulemd
version: 2
data:
    name: nvidia-driver
    stream: $s
    version: 20261203000000
    context: 0123456789
    arch: noarch
    summary: Nvidia driver for $s branch
    description: >-
        stand-in
    license:
        module:
            - MIT
    artifacts:
        rpms:
            - nvidia-driver-3:$v-1.el9.noarch
            - nvidia-driver-cuda-3:$v-1.el9.noarch
            - nvidia-open-3:$v-1.el9.noarch
            - cuda-drivers-3:$v-1.el9.noarch
            - $kmod-3:$v-1.el9.noarch
    profiles:
        default:
            description: Default installation
            rpms:
                - nvidia-driver
                - nvidia-driver-cuda
                - $kmod
...
Y
}
stream 580-dkms 580.105.08 kmod-nvidia-latest-dkms
stream 580-open 580.105.08 kmod-nvidia-open-dkms
stream latest-dkms 580.105.08 kmod-nvidia-latest-dkms
stream open-dkms 580.105.08 kmod-nvidia-open-dkms
modifyrepo_c --mdtype=modules $y /srv/repo/repodata >/dev/null
set +e
cd /tmp && mkdir -p /tmp/cap
D="dnf --releasever=9"
Q='%{name}\t%{epoch}:%{version}-%{release}\n'
# repository with the module metadata (streams up to 580), module 580-open NOT enabled
dnf -y -q --releasever=9 module reset nvidia-driver >/dev/null 2>&1
$D -q module list nvidia-driver > cap/nvidia-rhel9-module-list.txt 2>/dev/null; echo $? > cap/nvidia-rhel9-module-list.rc
$D -q repoquery --qf "$Q" nvidia-driver nvidia-driver-cuda kmod-nvidia-open-dkms > cap/nvidia-rhel9-repoquery-after-streams.txt 2>/dev/null
$D --assumeno --setopt=install_weak_deps=False install nvidia-driver-590.48.01-1.el9 nvidia-driver-cuda-590.48.01-1.el9 kmod-nvidia-open-dkms-590.48.01-1.el9 > cap/nvidia-rhel9-assumeno-590.txt 2>/dev/null; echo $? > cap/nvidia-rhel9-assumeno-590.rc
$D -y -q module enable nvidia-driver:580-open >/dev/null 2>&1
$D -q module list --enabled nvidia-driver > cap/nvidia-rhel9-module-list-enabled-580-open.txt 2>/dev/null
$D -q repoquery --qf "$Q" nvidia-driver nvidia-driver-cuda kmod-nvidia-open-dkms > cap/nvidia-rhel9-repoquery-580-open.txt 2>/dev/null
$D --assumeno --setopt=install_weak_deps=False install nvidia-driver-580.105.08-1.el9 nvidia-driver-cuda-580.105.08-1.el9 kmod-nvidia-open-dkms-580.105.08-1.el9 > cap/nvidia-rhel9-assumeno-580-open.txt 2>/dev/null
dnf -y -q --releasever=9 module reset nvidia-driver >/dev/null 2>&1
# the same repository without module metadata (as RHEL 10 and Fedora trees are)
cp -r /srv/repo /srv/repo10 && rm -f /srv/repo10/repodata/*modules* && createrepo_c -q /srv/repo10
sed -i 's#file:///srv/repo$#file:///srv/repo10#' /etc/yum.repos.d/standin.repo; dnf -q clean all >/dev/null 2>&1; $D -q makecache >/dev/null 2>&1
$D -q module list nvidia-driver > cap/nvidia-module-list-none.txt 2> cap/nvidia-module-list-none.err; echo $? > cap/nvidia-module-list-none.rc
$D -q repoquery --qf "$Q" nvidia-open cuda-drivers > cap/nvidia-nonmodular-repoquery.txt 2>/dev/null
$D -q repoquery --latest-limit 1 --qf '%{name}\t%{version}-%{release}\n' nvidia-open nvidia-driver-pinning-590 > cap/nvidia-nonmodular-candidates.txt 2>/dev/null
$D --assumeno --setopt=install_weak_deps=False install nvidia-open-590.48.01-1.el9 > cap/nvidia-nonmodular-assumeno-590-meta.txt 2>/dev/null; echo $? > cap/nvidia-nonmodular-assumeno-590-meta.rc
$D --assumeno --setopt=install_weak_deps=False install nvidia-open-590.48.01-1.el9 kmod-nvidia-open-dkms-590.48.01-1.el9 nvidia-driver-590.48.01-1.el9 nvidia-driver-cuda-590.48.01-1.el9 > cap/nvidia-nonmodular-assumeno-590-pinned.txt 2>/dev/null
$D --assumeno install does-not-exist-xyz > cap/assumeno-missing.txt 2> cap/assumeno-missing.err; echo $? > cap/assumeno-missing.rc
ls cap
