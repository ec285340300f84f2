Package: nodejs
Version: 20.18.1-1nodesource1
Installed-Size: 218340
Maintainer: Debian Developers <debian-devel@lists.debian.org>
Architecture: amd64
Depends: libc6 (>= 2.28), libgcc-s1 (>= 3.3), libstdc++6 (>= 11), python3-minimal, ca-certificates
Description: Node.js event-based server-side javascript engine
Description-md5: 00000000000000000000000000000000
Section: web
Priority: optional
Filename: pool/main/n/nodejs/nodejs_20.18.1-1nodesource1_amd64.deb
Size: 1503071
SHA256: 0000000000000000000000000000000000000000000000000000000000000000

