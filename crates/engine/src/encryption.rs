//! age (X25519) encryption of a backup set: each stored object is zstd, then age, to one or
//! more recipients. The backup side holds only the recipients (public keys); reading needs an
//! identity (a secret key) it never holds.
//!
//! Parts stream: [`Encrypting`] turns any reader of plaintext into a reader of its age file,
//! so a part is encrypted as it is uploaded, never held whole; [`decrypting`] does the reverse
//! for restore. A stored object is a plain age file: `age -d -i KEY part | zstd -d` reads it.

use std::io::Write;
use std::pin::Pin;
use std::str::FromStr;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use age::secrecy::ExposeSecret;
use tokio::io::{AsyncBufRead, AsyncRead, ReadBuf};
use tokio_util::compat::{FuturesAsyncReadCompatExt, TokioAsyncReadCompatExt};

/// What encrypted objects' names end with.
pub const SUFFIX: &str = ".age";

#[derive(Debug, thiserror::Error)]
pub enum EncryptionError {
    #[error(
        "`{value}` is not an age recipient ({reason}); a recipient looks like age1… (`backstop keygen` prints one)"
    )]
    Recipient { value: String, reason: String },
    #[error(
        "a recipient was given an age identity (AGE-SECRET-KEY-1…), the secret half of a key: pass its recipient (age1…, which `backstop keygen` prints) and keep the identity away from the backup side; not repeated here"
    )]
    SecretAsRecipient,
    #[error("reading identity file {path}: {reason}")]
    IdentityFile { path: String, reason: String },
    #[error("identity file {path} holds no age identity (a line AGE-SECRET-KEY-1…)")]
    NoIdentity { path: String },
    #[error(
        "this backup is encrypted to {recipients}; none of the identities given is one of them: pass --identity with the key of one"
    )]
    WrongIdentity { recipients: String },
    #[error("encrypting failed: {0}")]
    Encrypt(String),
    #[error("it does not decrypt: {0}")]
    Corrupt(String),
}

/// The public keys a backup is encrypted to.
#[derive(Clone)]
pub struct Recipients {
    keys: Vec<age::x25519::Recipient>,
    names: Vec<String>,
}

impl std::fmt::Debug for Recipients {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(&self.names).finish()
    }
}

impl Recipients {
    /// Parses `age1…` recipients; an empty or unparsable one is refused by name.
    pub fn parse<S: AsRef<str>>(values: &[S]) -> Result<Self, EncryptionError> {
        let mut keys = Vec::new();
        let mut names = Vec::new();
        for value in values {
            let value = value.as_ref().trim();
            // A secret key pasted where a recipient goes is never repeated back.
            if value.to_ascii_uppercase().starts_with("AGE-SECRET-KEY-") {
                return Err(EncryptionError::SecretAsRecipient);
            }
            let key = age::x25519::Recipient::from_str(value).map_err(|e| {
                EncryptionError::Recipient {
                    value: value.chars().filter(|c| !c.is_control()).take(80).collect(),
                    reason: e.to_string(),
                }
            })?;
            keys.push(key);
            names.push(value.to_string());
        }
        Ok(Self { keys, names })
    }

    /// A comma- or whitespace-separated list, as `BACKSTOP_RECIPIENTS` holds it.
    pub fn parse_list(list: &str) -> Result<Self, EncryptionError> {
        let values: Vec<&str> = list
            .split(|c: char| c == ',' || c.is_whitespace())
            .filter(|v| !v.is_empty())
            .collect();
        Self::parse(&values)
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    pub fn names(&self) -> &[String] {
        &self.names
    }

    fn encryptor(&self) -> Result<age::Encryptor, EncryptionError> {
        age::Encryptor::with_recipients(self.keys.iter().map(|k| k as &dyn age::Recipient))
            .map_err(|e| EncryptionError::Encrypt(e.to_string()))
    }
}

/// Secret keys to read encrypted sets with.
pub struct Identities {
    keys: Vec<age::x25519::Identity>,
}

impl std::fmt::Debug for Identities {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Identities({} keys)", self.keys.len())
    }
}

impl Identities {
    /// An age identity file: `AGE-SECRET-KEY-1…` lines, `#` comments and blank lines.
    pub fn from_file(path: &std::path::Path) -> Result<Self, EncryptionError> {
        let shown = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|e| EncryptionError::IdentityFile {
            path: shown.clone(),
            reason: e.to_string(),
        })?;
        Self::parse(&text).map_err(|e| match e {
            EncryptionError::NoIdentity { .. } => EncryptionError::NoIdentity { path: shown },
            EncryptionError::IdentityFile { reason, .. } => EncryptionError::IdentityFile {
                path: shown,
                reason,
            },
            other => other,
        })
    }

    /// The identities in `text` (an identity file's content, or a secret's value).
    pub fn parse(text: &str) -> Result<Self, EncryptionError> {
        let mut keys = Vec::new();
        for (n, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            // Never the line itself in the message: it is a secret key.
            let key = age::x25519::Identity::from_str(line).map_err(|_| {
                EncryptionError::IdentityFile {
                    path: String::new(),
                    reason: format!("line {} is not an age identity (AGE-SECRET-KEY-1…)", n + 1),
                }
            })?;
            keys.push(key);
        }
        if keys.is_empty() {
            return Err(EncryptionError::NoIdentity {
                path: String::new(),
            });
        }
        Ok(Self { keys })
    }

    fn iter(&self) -> impl Iterator<Item = &dyn age::Identity> {
        self.keys.iter().map(|k| k as &dyn age::Identity)
    }
}

/// A new identity: its file content (`# public key: age1…` then the secret key) and its
/// recipient.
pub fn generate() -> (String, String) {
    let identity = age::x25519::Identity::generate();
    let recipient = identity.to_public().to_string();
    let secret = identity.to_string();
    let created = time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default();
    (
        format!(
            "# created: {created}\n# public key: {recipient}\n{}\n",
            secret.expose_secret()
        ),
        recipient,
    )
}

/// `plaintext` as one age file.
pub fn encrypt_bytes(
    recipients: &Recipients,
    plaintext: &[u8],
) -> Result<Vec<u8>, EncryptionError> {
    let encrypt = |e: std::io::Error| EncryptionError::Encrypt(e.to_string());
    let mut writer = recipients
        .encryptor()?
        .wrap_output(Vec::with_capacity(plaintext.len() + 256))
        .map_err(encrypt)?;
    writer.write_all(plaintext).map_err(encrypt)?;
    writer.finish().map_err(encrypt)
}

/// The plaintext of one age file; `recipients` names the keys it was made for in the error.
pub fn decrypt_bytes(
    identities: &Identities,
    ciphertext: &[u8],
    recipients: &[String],
) -> Result<Vec<u8>, EncryptionError> {
    use std::io::Read as _;
    let decryptor =
        age::Decryptor::new_buffered(ciphertext).map_err(|e| decrypt_error(e, recipients))?;
    let mut reader = decryptor
        .decrypt(identities.iter())
        .map_err(|e| decrypt_error(e, recipients))?;
    let mut plaintext = Vec::new();
    reader
        .read_to_end(&mut plaintext)
        .map_err(|e| EncryptionError::Corrupt(e.to_string()))?;
    Ok(plaintext)
}

fn decrypt_error(error: age::DecryptError, recipients: &[String]) -> EncryptionError {
    match error {
        age::DecryptError::NoMatchingKeys => EncryptionError::WrongIdentity {
            recipients: recipients.join(", "),
        },
        other => EncryptionError::Corrupt(other.to_string()),
    }
}

/// A reader of `inner`'s plaintext that decrypts as it reads.
pub async fn decrypting<R>(
    identities: &Identities,
    inner: R,
    recipients: &[String],
) -> Result<Box<dyn AsyncRead + Send + Unpin>, EncryptionError>
where
    R: AsyncBufRead + Send + Unpin + 'static,
{
    let decryptor = age::Decryptor::new_async_buffered(inner.compat())
        .await
        .map_err(|e| decrypt_error(e, recipients))?;
    let reader = decryptor
        .decrypt_async(identities.iter())
        .map_err(|e| decrypt_error(e, recipients))?;
    Ok(Box::new(reader.compat()))
}

/// Where the age writer puts ciphertext, drained by [`Encrypting`] as it is read.
#[derive(Clone, Default)]
struct Pending(Arc<Mutex<Vec<u8>>>);

impl Write for Pending {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .map_err(|_| std::io::Error::other("encryption buffer poisoned"))?
            .extend_from_slice(bytes);
        Ok(bytes.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Reads `inner` and yields the age file of what it read: the stream a store uploads.
pub struct Encrypting<R> {
    inner: R,
    writer: Option<age::stream::StreamWriter<Pending>>,
    pending: Pending,
    /// Ciphertext taken from `pending`, and how much of it was handed out.
    out: Vec<u8>,
    at: usize,
    chunk: Vec<u8>,
}

impl<R: AsyncRead + Unpin> Encrypting<R> {
    pub fn new(recipients: &Recipients, inner: R) -> Result<Self, EncryptionError> {
        let pending = Pending::default();
        let writer = recipients
            .encryptor()?
            .wrap_output(pending.clone())
            .map_err(|e| EncryptionError::Encrypt(e.to_string()))?;
        Ok(Self {
            inner,
            writer: Some(writer),
            pending,
            out: Vec::new(),
            at: 0,
            chunk: vec![0; 64 * 1024],
        })
    }

    /// Moves what the writer produced into `out`.
    fn take_pending(&mut self) {
        if let Ok(mut pending) = self.pending.0.lock() {
            self.out = std::mem::take(&mut *pending);
            self.at = 0;
        }
    }
}

impl<R: AsyncRead + Unpin> AsyncRead for Encrypting<R> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let this = &mut *self;
        loop {
            if this.at < this.out.len() {
                let n = (this.out.len() - this.at).min(buf.remaining());
                buf.put_slice(&this.out[this.at..this.at + n]);
                this.at += n;
                return Poll::Ready(Ok(()));
            }
            this.take_pending();
            if !this.out.is_empty() {
                continue;
            }
            let Some(writer) = this.writer.as_mut() else {
                return Poll::Ready(Ok(())); // finished and drained: end of file
            };
            let mut read = ReadBuf::new(&mut this.chunk);
            match Pin::new(&mut this.inner).poll_read(cx, &mut read) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                Poll::Ready(Ok(())) if read.filled().is_empty() => {
                    if let Some(writer) = this.writer.take() {
                        writer.finish()?;
                    }
                }
                Poll::Ready(Ok(())) => {
                    let filled = read.filled().len();
                    writer.write_all(&this.chunk[..filled])?;
                }
            }
        }
    }
}

/// Stores `body` under `key` in `store`: as it is, or encrypted to `recipients` as it
/// streams.
pub async fn put(
    store: &dyn backstop_store::store::Store,
    key: &str,
    body: &mut (dyn AsyncRead + Send + Unpin),
    options: &backstop_store::store::PutOptions,
    recipients: Option<&Recipients>,
) -> Result<backstop_store::store::PutReceipt, backstop_store::store::StoreError> {
    match recipients {
        None => store.put(key, body, options).await,
        Some(recipients) => {
            let mut encrypted = Encrypting::new(recipients, body).map_err(|e| {
                backstop_store::store::StoreError::Source {
                    key: key.to_string(),
                    source: std::io::Error::other(e.to_string()),
                }
            })?;
            store.put(key, &mut encrypted, options).await
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncReadExt;

    fn pair() -> (Identities, Recipients) {
        let (file, recipient) = generate();
        (
            Identities::parse(&file).unwrap(),
            Recipients::parse(&[recipient]).unwrap(),
        )
    }

    #[tokio::test]
    async fn a_stream_encrypts_as_it_is_read_and_decrypts_back() {
        let (identities, recipients) = pair();
        let plaintext: Vec<u8> = (0..300_000u32).flat_map(|n| n.to_le_bytes()).collect();
        let mut encrypting = Encrypting::new(&recipients, plaintext.as_slice()).unwrap();
        let mut stored = Vec::new();
        encrypting.read_to_end(&mut stored).await.unwrap();
        assert!(stored.starts_with(b"age-encryption.org/v1"));
        assert_eq!(decrypt_bytes(&identities, &stored, &[]).unwrap(), plaintext);
        let mut reader = decrypting(&identities, std::io::Cursor::new(stored), &[])
            .await
            .unwrap();
        let mut back = Vec::new();
        reader.read_to_end(&mut back).await.unwrap();
        assert_eq!(back, plaintext);
    }

    #[test]
    fn another_identity_is_refused_naming_the_recipients() {
        let (_, recipients) = pair();
        let (other, _) = pair();
        let stored = encrypt_bytes(&recipients, b"rows").unwrap();
        let error = decrypt_bytes(&other, &stored, recipients.names()).unwrap_err();
        assert!(
            error.to_string().contains(&recipients.names()[0]),
            "{error}"
        );
    }

    #[test]
    fn a_bad_recipient_or_identity_is_one_line_without_the_secret() {
        let error = Recipients::parse(&["age1nope"]).unwrap_err().to_string();
        assert!(
            error.contains("age1nope") && !error.contains('\n'),
            "{error}"
        );
        let secret = "AGE-SECRET-KEY-1NOTAKEY";
        let error = Identities::parse(secret).unwrap_err().to_string();
        assert!(!error.contains(secret), "{error}");
        assert!(Recipients::parse_list("").unwrap().is_empty());
    }
}
