//! A test PKI made with the openssl command in a temporary directory: a CA, a node
//! certificate and a client certificate, reissued at will (certificate reload tests).

use std::path::{Path, PathBuf};
use std::process::Command;

/// A CA, a server certificate for 127.0.0.1 and localhost (good for client auth too, so
/// relays can present it), and a client certificate, in a temporary directory.
pub struct Pki {
    dir: tempfile::TempDir,
}

fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("openssl is not installed: scripts/test.sh installs it (apt-get install openssl)");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

impl Pki {
    pub fn generate() -> Pki {
        let pki = Pki {
            dir: tempfile::tempdir().expect("temp dir"),
        };
        let dir = pki.dir.path();
        openssl(
            dir,
            &[
                "req",
                "-x509",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-keyout",
                "ca.key",
                "-out",
                "ca.crt",
                "-days",
                "2",
                "-subj",
                "/CN=raftlock test CA",
            ],
        );
        std::fs::write(
            dir.join("server.ext"),
            "subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth,clientAuth\n",
        )
        .expect("write server.ext");
        std::fs::write(dir.join("client.ext"), "extendedKeyUsage=clientAuth\n")
            .expect("write client.ext");
        pki.issue("server", 1001, "raftlock server");
        pki.issue("client", 2001, "raftlock client");
        pki
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    pub fn arg(&self, name: &str) -> String {
        self.path(name).display().to_string()
    }

    /// Issues `{name}.crt` and `{name}.key` signed by the CA with `serial`, written
    /// beside and renamed over the files in place (as an operator replaces them).
    pub fn issue(&self, name: &str, serial: u32, common_name: &str) {
        let dir = self.dir.path();
        let (key, csr, crt) = (
            format!("{name}.key.new"),
            format!("{name}.csr"),
            format!("{name}.crt.new"),
        );
        openssl(
            dir,
            &[
                "req",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-keyout",
                &key,
                "-out",
                &csr,
                "-subj",
                &format!("/CN={common_name}"),
            ],
        );
        openssl(
            dir,
            &[
                "x509",
                "-req",
                "-in",
                &csr,
                "-CA",
                "ca.crt",
                "-CAkey",
                "ca.key",
                "-set_serial",
                &serial.to_string(),
                "-days",
                "2",
                "-out",
                &crt,
                "-extfile",
                &format!("{name}.ext"),
            ],
        );
        std::fs::rename(dir.join(&key), dir.join(format!("{name}.key"))).expect("rename key");
        std::fs::rename(dir.join(&crt), dir.join(format!("{name}.crt"))).expect("rename cert");
    }

    /// The flags of a node serving TLS on `tls_port` with the server certificate and
    /// trusting the CA, then `more`.
    pub fn server_flags(&self, tls_port: u16, more: &[&str]) -> Vec<String> {
        let mut flags = vec![
            "--tls-port".to_string(),
            tls_port.to_string(),
            "--tls-cert-file".into(),
            self.arg("server.crt"),
            "--tls-key-file".into(),
            self.arg("server.key"),
            "--tls-ca-cert-file".into(),
            self.arg("ca.crt"),
        ];
        flags.extend(more.iter().map(|s| s.to_string()));
        flags
    }
}
