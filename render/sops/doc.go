// Package sops decrypts SOPS-encrypted manifests and files the way Flux's
// kustomize-controller does when a Kustomization sets
// spec.decryption.provider: sops (its internal/decryptor package): objects
// carrying SOPS metadata are decrypted whole, Secrets whose data values hold
// encrypted files (from secretGenerators) have those values decrypted, and
// the files generators and patches read are decrypted before the build.
//
// It reads the SOPS file format itself (metadata, key groups with Shamir
// sharing, encryption rules, AES-256-GCM values, the JSON, YAML, dotenv, INI
// and binary stores) rather than linking sops, whose key services pull in
// every cloud KMS SDK. Data keys open with age identities (filippo.io/age)
// and PGP private keys (OpenPGP in Go, where kustomize-controller runs gpg);
// cloud KMS and Vault keys cannot be used offline and are reported as such.
//
// Decrypted values never appear in errors: errors name the object
// (Kind/namespace/name) or file, and the reason.
package sops
