#!/usr/bin/env bash
# Builds the .deb and the .rpm from an already built module and agent 2
# plugin, into target/packages/.
# usage: packaging/build-packages.sh MODULE_SO PLUGIN
# The .deb is assembled with dpkg-deb (Depends computed by dpkg-shlibdeps from
# the module itself), the .rpm with rpmbuild from packaging/rpm/ (Requires from
# rpm's own ELF dependency generator), both from one staged file tree.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
module_so=${1:?usage: $0 MODULE_SO PLUGIN}
plugin=${2:?usage: $0 MODULE_SO PLUGIN}
[ -f "$module_so" ] || { echo "no module at $module_so (build it first: cargo build --release)" >&2; exit 1; }
[ -f "$plugin" ] || { echo "no agent 2 plugin at $plugin (build it first: cargo build --release)" >&2; exit 1; }
# Where Zabbix's own packages put agent 2's loadable plugins, and the snippet
# that enables it (agent 2's config includes zabbix_agent2.d/plugins.d/*.conf).
plugin_path=/usr/sbin/zabbix-agent2-plugin/zabbix-agent2-plugin-exalate
agent2_snippet=/etc/zabbix/zabbix_agent2.d/plugins.d/exalate.conf

version=$(sed -n 's/^version = "\(.*\)"$/\1/p' Cargo.toml | head -n 1)
deb_version="$version-1"
deb_arch=$(dpkg --print-architecture)
multiarch=$(dpkg-architecture -qDEB_HOST_MULTIARCH 2>/dev/null || gcc -print-multiarch)
rpm_arch=$(uname -m)
out=target/packages
build=$out/build
rm -rf "$build"
mkdir -p "$build"
rm -f "$out"/exalate-zabbix_*.deb "$out"/exalate-zabbix-*.rpm

# Reproducible timestamps: the last commit's time, else now.
export SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH:-$(git log -1 --format=%ct 2>/dev/null || date +%s)}

header=include/exalate_zabbix.h

# stage ROOT MODULEDIR PKGCONFIGDIR: the files both packages share.
stage() {
  local root=$1 moduledir=$2 pcdir=$3
  install -d "$root$moduledir" "$root$pcdir" "$root/usr/include" "$root/usr/share/exalate-zabbix" "$root/etc/zabbix"
  # Stripped as Debian's dh_strip does: the exported symbols stay.
  strip --strip-unneeded --remove-section=.comment --remove-section=.note \
    -o "$root$moduledir/libexalate_zabbix.so" "$module_so"
  ln -s libexalate_zabbix.so "$root$moduledir/libexalate_zabbix.so.0"
  sed -e "s|@prefix@|/usr|; s|@libdir@|$moduledir|; s|@includedir@|/usr/include|; s|@version@|$version|" \
    packaging/exalate_zabbix.pc.in > "$root$pcdir/exalate_zabbix.pc"
  install -m 0644 "$header" "$root/usr/include/exalate_zabbix.h"
  install -m 0644 packaging/template/template_exalate_zabbix.yaml "$root/usr/share/exalate-zabbix/"
  install -d "$root/usr/share/exalate-zabbix/selinux"
  install -m 0644 packaging/selinux/exalate_zabbix.te packaging/selinux/exalate_zabbix.fc \
    packaging/selinux/exalate_zabbix.if "$root/usr/share/exalate-zabbix/selinux/"
  install -m 0640 packaging/exalate_zabbix.toml "$root/etc/zabbix/exalate_zabbix.toml"
  install -d "$root${plugin_path%/*}"
  strip --strip-unneeded --remove-section=.comment --remove-section=.note -o "$root$plugin_path" "$plugin"
  chmod 0755 "$root$plugin_path"
}

# ---- .deb -------------------------------------------------------------------
deb_root=$build/deb/debian/exalate-zabbix
deb_moduledir=/usr/lib/zabbix/modules
stage "$deb_root" "$deb_moduledir" "/usr/lib/$multiarch/pkgconfig"
chmod 0644 "$deb_root$deb_moduledir/libexalate_zabbix.so"
doc=$deb_root/usr/share/doc/exalate-zabbix
install -d "$doc" "$deb_root/usr/share/lintian/overrides"
install -m 0644 packaging/debian/copyright "$doc/copyright"
gzip -9n < packaging/debian/changelog > "$doc/changelog.Debian.gz"
gzip -9n < CHANGELOG.md > "$doc/changelog.gz"
gzip -9n < README.md > "$doc/README.md.gz"
install -m 0644 packaging/debian/lintian-overrides "$deb_root/usr/share/lintian/overrides/exalate-zabbix"

# Depends from the module itself: the libc (and libgcc) versions it was linked for.
printf 'Source: exalate-zabbix\n\nPackage: exalate-zabbix\nArchitecture: any\n' > "$build/deb/debian/control"
depends=$(cd "$build/deb" && dpkg-shlibdeps -O -e"debian/exalate-zabbix$deb_moduledir/libexalate_zabbix.so" \
  -e"debian/exalate-zabbix$plugin_path" 2>/dev/null |
  sed -n 's/^shlibs:Depends=//p')
[ -n "$depends" ] || { echo "dpkg-shlibdeps found no dependencies" >&2; exit 1; }
# Bookworm's symbols files date every symbol of the libpthread/libdl stubs to
# 2.34 (their merge into libc); the module's real floor is its highest GLIBC
# symbol version, so libc6 takes that.
glibc_floor=$(for f in "$module_so" "$plugin"; do scripts/max-glibc.sh "$f" | sed -n 's/.*needed: //p'; done | sort -V | tail -n 1)
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

# ---- .rpm -------------------------------------------------------------------
rpm_root=$build/rpm/root
stage "$rpm_root" /usr/lib64/zabbix/modules /usr/lib64/pkgconfig
chmod 0755 "$rpm_root/usr/lib64/zabbix/modules/libexalate_zabbix.so"
for dir in zabbix_agentd.d zabbix_agentd.conf.d; do
  install -d "$rpm_root/etc/zabbix/$dir"
  echo "LoadModule=/usr/lib64/zabbix/modules/libexalate_zabbix.so" > "$rpm_root/etc/zabbix/$dir/exalate_zabbix.conf"
done
install -d "$rpm_root${agent2_snippet%/*}"
echo "Plugins.Exalate.System.Path=$plugin_path" > "$rpm_root$agent2_snippet"
install -D -m 0644 README.md "$rpm_root/usr/share/doc/exalate-zabbix/README.md"
install -D -m 0644 CHANGELOG.md "$rpm_root/usr/share/doc/exalate-zabbix/CHANGELOG.md"
install -D -m 0644 LICENSE "$rpm_root/usr/share/licenses/exalate-zabbix/LICENSE"
sed -e "s|@version@|$version|; s|@rpm_arch@|$rpm_arch|" packaging/rpm/exalate-zabbix.spec.in > "$build/rpm/exalate-zabbix.spec"
rpmbuild -bb --quiet \
  --define "_topdir $top/$build/rpm/top" \
  --define "stagedir $top/$rpm_root" \
  --define "_build_id_links none" \
  --define "use_source_date_epoch_as_buildtime 1" \
  --define "clamp_mtime_to_source_date_epoch 1" \
  --define "_buildhost exalate-zabbix" \
  "$build/rpm/exalate-zabbix.spec" >"$build/rpm/rpmbuild.log" 2>&1 ||
  { cat "$build/rpm/rpmbuild.log" >&2; exit 1; }
rpm=$out/exalate-zabbix-$version-1.$rpm_arch.rpm
mv "$build/rpm/top/RPMS/$rpm_arch/exalate-zabbix-$version-1.$rpm_arch.rpm" "$rpm"

echo "built from $module_so and $plugin:"
for f in "$deb" "$rpm"; do
  printf '  %-52s %6s KiB\n' "$f" "$(( ($(stat -c %s "$f") + 1023) / 1024 ))"
done
echo "  .deb Depends: $depends; Recommends: zabbix-agent | zabbix-agent2"
echo "  .rpm Requires: $(rpm -qp --requires "$rpm" 2>/dev/null | grep -v '^rpmlib(' | paste -sd, | sed 's/,/, /g'); Recommends: $(rpm -qp --recommends "$rpm" 2>/dev/null | paste -sd,)"
