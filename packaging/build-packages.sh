#!/usr/bin/env bash
# Builds a .deb and an .rpm per architecture from already built files, into
# target/packages/.
# usage: packaging/build-packages.sh ARCH=DIR...   ARCH: x86_64 or aarch64;
#   DIR holds that architecture's built files (target/<rust target>/release)
# The .deb is assembled with dpkg-deb (Depends computed by dpkg-shlibdeps from
# the built files themselves), the .rpm with rpmbuild from packaging/rpm/ (Requires from
# rpm's own ELF dependency generator), both from one staged file tree.
# For a foreign architecture (aarch64 here), dpkg-shlibdeps reads that
# architecture's libc6 and libgcc-s1 from the arm64 bookworm sysroot that
# `make compat-roots` builds (FOREIGN_ROOT_arm64 may name another).
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
[ $# -gt 0 ] || { echo "usage: $0 ARCH=DIR... (e.g. x86_64=target/x86_64-unknown-linux-gnu/release)" >&2; exit 1; }

# The built files each package carries, found in every ARCH's DIR.
built_files=(libexalate_zabbix.so zabbix-agent2-plugin-exalate exalate-zabbix)
# Where Zabbix's own packages put agent 2's loadable plugins, and the snippet
# that enables it (agent 2's config includes zabbix_agent2.d/plugins.d/*.conf).
plugin_path=/usr/sbin/zabbix-agent2-plugin/zabbix-agent2-plugin-exalate
agent2_snippet=/etc/zabbix/zabbix_agent2.d/plugins.d/exalate.conf

version=$(sed -n 's/^version = "\(.*\)"$/\1/p' Cargo.toml | head -n 1)
deb_version="$version-1"
host_deb_arch=$(dpkg --print-architecture)
out=target/packages
rm -rf "$out/build"
rm -f "$out"/exalate-zabbix_*.deb "$out"/exalate-zabbix-*.rpm

# Reproducible timestamps: the last commit's time, else now.
export SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH:-$(git log -1 --format=%ct 2>/dev/null || date +%s)}

header=include/exalate_zabbix.h
# The documentation, in /usr/share/doc/exalate-zabbix/ as in the source tree
# (README.md and docs/*.md), and the template's README, also beside the template.
doc_files=(README.md docs/*.md)
template_readme=packaging/template/README.md

# stage ROOT MODULEDIR PKGCONFIGDIR: the files both packages share, from $from
# (the architecture's built files), stripped with $strip.
stage() {
  local root=$1 moduledir=$2 pcdir=$3
  install -d "$root$moduledir" "$root$pcdir" "$root/usr/include" "$root/usr/share/exalate-zabbix" "$root/etc/zabbix"
  # Stripped as Debian's dh_strip does: the exported symbols stay.
  "$strip" --strip-unneeded --remove-section=.comment --remove-section=.note \
    -o "$root$moduledir/libexalate_zabbix.so" "$from/libexalate_zabbix.so"
  ln -s libexalate_zabbix.so "$root$moduledir/libexalate_zabbix.so.0"
  sed -e "s|@prefix@|/usr|; s|@libdir@|$moduledir|; s|@includedir@|/usr/include|; s|@version@|$version|" \
    packaging/exalate_zabbix.pc.in > "$root$pcdir/exalate_zabbix.pc"
  install -m 0644 "$header" "$root/usr/include/exalate_zabbix.h"
  install -m 0644 packaging/template/template_exalate_zabbix.yaml packaging/template/template_exalate_zabbix_7.0.yaml "$template_readme" "$root/usr/share/exalate-zabbix/"
  install -d "$root/usr/share/exalate-zabbix/selinux"
  install -m 0644 packaging/selinux/exalate_zabbix.te packaging/selinux/exalate_zabbix.fc \
    packaging/selinux/exalate_zabbix.if "$root/usr/share/exalate-zabbix/selinux/"
  install -m 0640 packaging/exalate_zabbix.toml "$root/etc/zabbix/exalate_zabbix.toml"
  install -d "$root${plugin_path%/*}"
  "$strip" --strip-unneeded --remove-section=.comment --remove-section=.note \
    -o "$root$plugin_path" "$from/zabbix-agent2-plugin-exalate"
  chmod 0755 "$root$plugin_path"
  # `exalate-zabbix check`, and its man page (compressed by each packager's way).
  install -d "$root/usr/bin" "$root/usr/share/man/man1"
  "$strip" --strip-unneeded --remove-section=.comment --remove-section=.note \
    -o "$root/usr/bin/exalate-zabbix" "$from/exalate-zabbix"
  chmod 0755 "$root/usr/bin/exalate-zabbix"
}

# dpkg-shlibdeps options for a foreign architecture: its libc6 and libgcc-s1,
# unpacked with their DEBIAN/ (symbols files) from the sysroot's downloaded
# packages, as build trees it searches first (-S), and its library dirs (-l).
foreign_shlibs() {
  local deb_arch=$1 sysroot_var=FOREIGN_ROOT_$1 sysroot pkg deb tree
  sysroot=${!sysroot_var:-target/compat/roots-$deb_arch/bookworm}
  for pkg in libc6 libgcc-s1; do
    deb=$(find "$sysroot/var/cache/apt/archives" -maxdepth 1 -name "${pkg}_*_$deb_arch.deb" 2>/dev/null | head -n 1)
    [ -n "$deb" ] || {
      echo "no ${pkg}_*_$deb_arch.deb in $sysroot/var/cache/apt/archives (make compat-roots builds it)" >&2
      return 1
    }
    tree=$top/$build/shlibs/$pkg
    mkdir -p "$tree"
    dpkg-deb -R "$deb" "$tree" || return 1
    printf -- '-S%s\n' "$tree"
  done
  # Where that architecture's libraries are (dpkg-shlibdeps knows this machine's).
  printf -- '-l%s\n' "/lib/$multiarch" "/usr/lib/$multiarch"
}

# ---- .deb -------------------------------------------------------------------
build_deb() {
  local deb_root=$build/deb/debian/exalate-zabbix deb_moduledir=/usr/lib/zabbix/modules
  local doc shlibs_opts=() elf_files=() file depends glibc_floor installed_size
  stage "$deb_root" "$deb_moduledir" "/usr/lib/$multiarch/pkgconfig"
  chmod 0644 "$deb_root$deb_moduledir/libexalate_zabbix.so"
  doc=$deb_root/usr/share/doc/exalate-zabbix
  install -d "$doc" "$deb_root/usr/share/lintian/overrides"
  install -m 0644 packaging/debian/copyright "$doc/copyright"
  gzip -9n < packaging/debian/changelog > "$doc/changelog.Debian.gz"
  gzip -9n < CHANGELOG.md > "$doc/changelog.gz"
  # Compressed, as Debian policy asks of documentation (dh_compress).
  install -d "$doc/docs" "$doc/template"
  for file in "${doc_files[@]}"; do
    gzip -9n < "$file" > "$doc/$file.gz"
  done
  gzip -9n < "$template_readme" > "$doc/template/README.md.gz"
  gzip -9n < packaging/exalate-zabbix.1 > "$deb_root/usr/share/man/man1/exalate-zabbix.1.gz"
  chmod 0644 "$deb_root/usr/share/man/man1/exalate-zabbix.1.gz"
  install -m 0644 packaging/debian/lintian-overrides "$deb_root/usr/share/lintian/overrides/exalate-zabbix"

  # Depends from the built files themselves: the libc (and libgcc) versions
  # they were linked for; every ELF file staged is one.
  if [ "$deb_arch" != "$host_deb_arch" ]; then
    foreign_shlibs "$deb_arch" > "$build/shlibs-options" || return 1
    mapfile -t shlibs_opts < "$build/shlibs-options"
  fi
  while IFS= read -r -d '' file; do
    readelf -h "$build/deb/$file" >/dev/null 2>&1 && elf_files+=(-e"$file")
  done < <(cd "$build/deb" && find debian/exalate-zabbix -type f -print0)
  printf 'Source: exalate-zabbix\n\nPackage: exalate-zabbix\nArchitecture: any\n' > "$build/deb/debian/control"
  depends=$(cd "$build/deb" && dpkg-shlibdeps -O "${shlibs_opts[@]}" "${elf_files[@]}" 2>"$top/$build/dpkg-shlibdeps.log" |
    sed -n 's/^shlibs:Depends=//p')
  [ -n "$depends" ] || { echo "dpkg-shlibdeps found no dependencies:" >&2; cat "$build/dpkg-shlibdeps.log" >&2; return 1; }
  # Bookworm's symbols files date every symbol of the libpthread/libdl stubs to
  # 2.34 (their merge into libc); the real floor is the highest GLIBC symbol
  # version the built files need, so libc6 takes that.
  glibc_floor=$(for file in "${built_files[@]}"; do
    scripts/max-glibc.sh "$from/$file" | sed -n 's/.*needed: //p'
  done | sort -V | tail -n 1)
  depends=$(printf '%s' "$depends" | sed -E "s/libc6 \(>= [^)]*\)/libc6 (>= $glibc_floor)/")
  rm -r "$build/deb/debian/control"

  install -d "$deb_root/DEBIAN"
  installed_size=$(du -sk --exclude=DEBIAN "$deb_root" | cut -f1)
  sed -e "s|@deb_version@|$deb_version|; s|@arch@|$deb_arch|; s|@installed_size@|$installed_size|; s|@depends@|$depends|" \
    packaging/debian/control.in > "$deb_root/DEBIAN/control"
  install -m 0755 packaging/debian/postinst packaging/debian/postrm "$deb_root/DEBIAN/"
  install -m 0644 packaging/debian/triggers "$deb_root/DEBIAN/"
  echo /etc/zabbix/exalate_zabbix.toml > "$deb_root/DEBIAN/conffiles"
  (cd "$deb_root" && find . -path ./DEBIAN -prune -o -type f -printf '%P\0' | LC_ALL=C sort -z | xargs -0 md5sum) > "$deb_root/DEBIAN/md5sums"
  chmod 0644 "$deb_root/DEBIAN/md5sums" "$deb_root/DEBIAN/conffiles"
  find "$deb_root" -depth -newermt "@$SOURCE_DATE_EPOCH" -exec touch --no-dereference --date="@$SOURCE_DATE_EPOCH" {} +
  deb=$out/exalate-zabbix_${deb_version}_$deb_arch.deb
  dpkg-deb --root-owner-group -Zxz --build "$deb_root" "$deb" >/dev/null
  deb_depends=$depends
}

# ---- .rpm -------------------------------------------------------------------
build_rpm() {
  local rpm_root=$build/rpm/root
  stage "$rpm_root" /usr/lib64/zabbix/modules /usr/lib64/pkgconfig
  chmod 0755 "$rpm_root/usr/lib64/zabbix/modules/libexalate_zabbix.so"
  for dir in zabbix_agentd.d zabbix_agentd.conf.d; do
    install -d "$rpm_root/etc/zabbix/$dir"
    echo "LoadModule=/usr/lib64/zabbix/modules/libexalate_zabbix.so" > "$rpm_root/etc/zabbix/$dir/exalate_zabbix.conf"
  done
  install -d "$rpm_root${agent2_snippet%/*}"
  echo "Plugins.Exalate.System.Path=$plugin_path" > "$rpm_root$agent2_snippet"
  for file in "${doc_files[@]}"; do
    install -D -m 0644 "$file" "$rpm_root/usr/share/doc/exalate-zabbix/$file"
  done
  install -D -m 0644 "$template_readme" "$rpm_root/usr/share/doc/exalate-zabbix/template/README.md"
  # Compressed here: rpmbuild's brp-compress is not run for a staged tree everywhere.
  gzip -9n < packaging/exalate-zabbix.1 > "$rpm_root/usr/share/man/man1/exalate-zabbix.1.gz"
  chmod 0644 "$rpm_root/usr/share/man/man1/exalate-zabbix.1.gz"
  install -D -m 0644 CHANGELOG.md "$rpm_root/usr/share/doc/exalate-zabbix/CHANGELOG.md"
  install -D -m 0644 LICENSE "$rpm_root/usr/share/licenses/exalate-zabbix/LICENSE"
  sed -e "s|@version@|$version|" packaging/rpm/exalate-zabbix.spec.in > "$build/rpm/exalate-zabbix.spec"
  # --target: rpmbuild builds for another CPU only when told; nothing is compiled.
  rpmbuild -bb --quiet --target "$rpm_arch-linux" \
    --define "_topdir $top/$build/rpm/top" \
    --define "stagedir $top/$rpm_root" \
    --define "_build_id_links none" \
    --define "use_source_date_epoch_as_buildtime 1" \
    --define "clamp_mtime_to_source_date_epoch 1" \
    --define "_buildhost exalate-zabbix" \
    "$build/rpm/exalate-zabbix.spec" >"$build/rpm/rpmbuild.log" 2>&1 ||
    { cat "$build/rpm/rpmbuild.log" >&2; return 1; }
  rpm=$out/exalate-zabbix-$version-1.$rpm_arch.rpm
  mv "$build/rpm/top/RPMS/$rpm_arch/exalate-zabbix-$version-1.$rpm_arch.rpm" "$rpm"
}

for spec in "$@"; do
  arch=${spec%%=*} from=${spec#*=}
  case $arch in
    x86_64) deb_arch=amd64 ;;
    aarch64) deb_arch=arm64 ;;
    *) echo "unknown architecture $arch (x86_64, aarch64)" >&2; exit 1 ;;
  esac
  rpm_arch=$arch multiarch=$arch-linux-gnu
  # binutils' strip knows only this machine's CPU; binutils-ARCH-linux-gnu's any.
  strip=$multiarch-strip
  command -v "$strip" >/dev/null || { echo "no $strip (package binutils-${multiarch//_/-})" >&2; exit 1; }
  for file in "${built_files[@]}"; do
    [ -f "$from/$file" ] || { echo "no $from/$file (build it first: make release-compat)" >&2; exit 1; }
  done
  build=$out/build/$arch
  mkdir -p "$build"
  build_deb
  build_rpm
  echo "$arch, from $from:"
  for f in "$deb" "$rpm"; do
    printf '  %-52s %6s KiB\n' "$f" "$(( ($(stat -c %s "$f") + 1023) / 1024 ))"
  done
  echo "  .deb Depends: $deb_depends; Recommends: zabbix-agent | zabbix-agent2"
  echo "  .rpm Requires: $(rpm -qp --requires "$rpm" 2>/dev/null | grep -v '^rpmlib(' | paste -sd, | sed 's/,/, /g'); Recommends: $(rpm -qp --recommends "$rpm" 2>/dev/null | paste -sd,)"
done
