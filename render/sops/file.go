package sops

import (
	"bytes"
	"fmt"
)

// DecryptFile decrypts a file kustomize-controller decrypts before the
// kustomize build (its Decryptor.DecryptSources): a file a secretGenerator
// reads (files:) or a patch file. The format follows name as
// kustomize-controller decides it: .yaml/.yml YAML, .json (and
// .dockerconfigjson) JSON, .env dotenv, .ini INI, anything else binary
// (sops' JSON envelope, written back as the raw content). For a generator
// entry "key=path" pass the key: kustomize-controller decides by it.
//
// Content without the format's SOPS marker is returned unchanged, as
// kustomize-controller leaves it. Files over 5 MiB are refused, as there.
// Errors are a *NoKeyError, *MACError (only with WithMACCheck) or *Error
// naming the file.
func (k Keys) DecryptFile(name string, data []byte) ([]byte, error) {
	return k.decryptFile(name, data, formatForPath(name))
}

// DecryptEnvFile decrypts a file a secretGenerator reads as envs: like
// DecryptFile, except that a name without a known extension is dotenv.
func (k Keys) DecryptEnvFile(name string, data []byte) ([]byte, error) {
	f := formatForPath(name)
	if f == formatBinary {
		f = formatDotenv
	}
	return k.decryptFile(name, data, f)
}

// decryptFile decrypts file content in place of its format.
func (k Keys) decryptFile(name string, data []byte, f format) ([]byte, error) {
	if len(data) > maxSize {
		return nil, &Error{Object: name, Err: fmt.Errorf("%w: %d bytes, the limit is %d", errTooLarge, len(data), maxSize)}
	}
	if !bytes.Contains(data, f.marker()) {
		return data, nil
	}
	out, err := k.decryptBytes(data, f, f)
	if err != nil {
		return nil, named(err, name, "")
	}
	return out, nil
}
