#!/bin/sh
# Regenerates the fixtures in this directory with the real sops CLI (3.13.3)
# and gpg. They are test data: the keys here protect nothing.
#
#   SOPS=/path/to/sops AGE_KEYGEN=/path/to/age-keygen ./generate.sh
#
# Inputs (*.plain.*) are kept; keys, encrypted files (*.enc.*) and the
# CLI's own decryption of them (*.dec.*) are rewritten.
set -eu
cd "$(dirname "$0")"
SOPS=${SOPS:-sops}
AGE_KEYGEN=${AGE_KEYGEN:-age-keygen}
export SOPS_DISABLE_VERSION_CHECK=1

"$AGE_KEYGEN" -o age.agekey.tmp 2>/dev/null
grep -v '^#' age.agekey.tmp > age.agekey
rm age.agekey.tmp
AGE=$("$AGE_KEYGEN" -y age.agekey)

GNUPGHOME=$(mktemp -d)
export GNUPGHOME
gpg --batch --passphrase '' --quick-gen-key 'pregate test <test@example.invalid>' rsa3072 encrypt,sign never 2>/dev/null
FP=$(gpg --with-colons --list-secret-keys | awk -F: '/^fpr/ {print $10; exit}')
gpg --batch --armor --export-secret-keys "$FP" > pgp.asc

enc() { # enc <out> <sops args...> -- input
	out=$1; shift
	"$SOPS" --encrypt "$@" > "$out"
}
enc secret.enc.yaml --age "$AGE" --encrypted-regex '^(data|stringData)$' secret.plain.yaml
enc configmap.enc.yaml --age "$AGE" configmap.plain.yaml
enc app.enc.env --age "$AGE" app.plain.env
enc config.enc.json --age "$AGE" config.plain.json
enc settings.enc.ini --age "$AGE" settings.plain.ini
enc token.enc.bin --age "$AGE" --input-type binary --output-type json token.plain.bin
enc pgp-secret.enc.yaml --pgp "$FP" --encrypted-regex '^(data|stringData)$' secret.plain.yaml

SOPS_AGE_KEY_FILE=age.agekey; export SOPS_AGE_KEY_FILE
"$SOPS" --decrypt secret.enc.yaml > secret.dec.yaml
"$SOPS" --decrypt configmap.enc.yaml > configmap.dec.yaml
"$SOPS" --decrypt app.enc.env > app.dec.env
"$SOPS" --decrypt config.enc.json > config.dec.json
"$SOPS" --decrypt settings.enc.ini > settings.dec.ini
"$SOPS" --decrypt --input-type json --output-type binary token.enc.bin > token.dec.bin
rm -rf "$GNUPGHOME"
