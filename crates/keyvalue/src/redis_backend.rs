//! Buckets in a Redis server: one hash per bucket, named
//! `stratus:kv:<app>:<bucket>` (app and bucket names cannot hold `:`, so no
//! two buckets share a hash).

use std::sync::Arc;
use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{Client, Cmd, FromRedisValue};
use stratus_runtime::{BucketId, KeyValueBackend, KeyValueError, KeyValueFuture, Pairs};
use tokio::sync::OnceCell;

use crate::{KeyValueSetupError, MAX_COUNTER};

/// How long connecting, and then each command, may take before the guest
/// gets an error instead of waiting out its own timeout.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
const RESPONSE_TIMEOUT: Duration = Duration::from_secs(2);

/// A Redis backend. The connection is made on first use and re-made by the
/// connection manager after a failure.
pub struct RedisKeyValue {
    client: Client,
    url: String,
    connection: Arc<OnceCell<ConnectionManager>>,
}

impl std::fmt::Debug for RedisKeyValue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisKeyValue")
            .field("url", &self.url)
            .finish_non_exhaustive()
    }
}

impl RedisKeyValue {
    pub fn new(url: &str) -> Result<RedisKeyValue, KeyValueSetupError> {
        let client = Client::open(url).map_err(|e| KeyValueSetupError::RedisUrl {
            url: url.to_string(),
            reason: e.to_string(),
        })?;
        Ok(RedisKeyValue {
            client,
            url: url.to_string(),
            connection: Arc::new(OnceCell::new()),
        })
    }

    /// Runs `cmd` and reads its reply as `T`.
    fn query<T: FromRedisValue + Send + 'static>(&self, cmd: Cmd) -> KeyValueFuture<T> {
        let (client, url, cell) = (
            self.client.clone(),
            self.url.clone(),
            self.connection.clone(),
        );
        Box::pin(async move {
            let manager = cell
                .get_or_try_init(|| async {
                    let config = ConnectionManagerConfig::new()
                        .set_connection_timeout(Some(CONNECT_TIMEOUT))
                        .set_response_timeout(Some(RESPONSE_TIMEOUT))
                        .set_number_of_retries(1);
                    client.get_connection_manager_with_config(config).await
                })
                .await
                .map_err(|e| {
                    KeyValueError::Backend(format!(
                        "cannot connect to Redis at {}: {e}",
                        without_password(&url)
                    ))
                })?;
            let mut connection = manager.clone();
            cmd.query_async::<T>(&mut connection)
                .await
                .map_err(|e| KeyValueError::Backend(format!("redis: {e}")))
        })
    }
}

/// `HINCRBY`, refusing what the SQLite backend refuses too: a value that is
/// not a plain non-negative decimal number. Redis runs a script atomically,
/// so the check and the increment see the same value, and nothing is
/// changed when the check fails.
const INCREMENT_SCRIPT: &str = r"
local value = redis.call('HGET', KEYS[1], ARGV[1])
if value and not string.match(value, '^[0-9]+$') then
  return redis.error_reply('ERR hash value is not an integer')
end
return redis.call('HINCRBY', KEYS[1], ARGV[1], ARGV[2])
";

/// `redis://user:secret@host:6379/0` as `redis://user:***@host:6379/0`:
/// a URL shown in `/readyz` and logs must not carry the password.
fn without_password(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    match rest.split_once('@') {
        Some((credentials, host)) => {
            let user = credentials.split_once(':').map_or(credentials, |(u, _)| u);
            format!("{scheme}://{user}:***@{host}")
        }
        None => url.to_string(),
    }
}

fn hash(bucket: &BucketId) -> String {
    format!("stratus:kv:{}:{}", bucket.app, bucket.bucket)
}

fn command(name: &str, bucket: &BucketId) -> Cmd {
    let mut cmd = redis::cmd(name);
    cmd.arg(hash(bucket));
    cmd
}

impl KeyValueBackend for RedisKeyValue {
    fn kind(&self) -> &'static str {
        "redis"
    }

    fn location(&self) -> String {
        without_password(&self.url)
    }

    fn check(&self) -> KeyValueFuture<()> {
        let pong = self.query::<String>(redis::cmd("PING"));
        Box::pin(async move { pong.await.map(drop) })
    }

    fn get(&self, bucket: BucketId, key: String) -> KeyValueFuture<Option<Vec<u8>>> {
        let mut cmd = command("HGET", &bucket);
        cmd.arg(key);
        self.query(cmd)
    }

    fn set(&self, bucket: BucketId, key: String, value: Vec<u8>) -> KeyValueFuture<()> {
        let mut cmd = command("HSET", &bucket);
        cmd.arg(key).arg(value);
        let done = self.query::<i64>(cmd);
        Box::pin(async move { done.await.map(drop) })
    }

    fn delete(&self, bucket: BucketId, key: String) -> KeyValueFuture<()> {
        let mut cmd = command("HDEL", &bucket);
        cmd.arg(key);
        let done = self.query::<i64>(cmd);
        Box::pin(async move { done.await.map(drop) })
    }

    fn exists(&self, bucket: BucketId, key: String) -> KeyValueFuture<bool> {
        let mut cmd = command("HEXISTS", &bucket);
        cmd.arg(key);
        self.query(cmd)
    }

    fn list_keys(
        &self,
        bucket: BucketId,
        cursor: Option<u64>,
        limit: usize,
    ) -> KeyValueFuture<(Vec<String>, Option<u64>)> {
        let mut cmd = command("HSCAN", &bucket);
        cmd.arg(cursor.unwrap_or(0)).arg("COUNT").arg(limit);
        let page = self.query::<(u64, Vec<(String, Vec<u8>)>)>(cmd);
        Box::pin(async move {
            let (next, pairs) = page.await?;
            // HSCAN's cursor 0 means the scan is complete.
            let next = (next != 0).then_some(next);
            Ok((pairs.into_iter().map(|(key, _)| key).collect(), next))
        })
    }

    fn increment(&self, bucket: BucketId, key: String, delta: u64) -> KeyValueFuture<u64> {
        let Ok(delta_signed) = i64::try_from(delta) else {
            return Box::pin(async move { Err(KeyValueError::Overflow { key }) });
        };
        let mut cmd = redis::cmd("EVAL");
        cmd.arg(INCREMENT_SCRIPT)
            .arg(1)
            .arg(hash(&bucket))
            .arg(&key)
            .arg(delta_signed);
        let sum = self.query::<i64>(cmd);
        Box::pin(async move {
            match sum.await {
                Ok(n) => u64::try_from(n)
                    .ok()
                    .filter(|n| *n <= MAX_COUNTER)
                    .ok_or(KeyValueError::NotANumber { key }),
                Err(KeyValueError::Backend(message)) if message.contains("not an integer") => {
                    Err(KeyValueError::NotANumber { key })
                }
                Err(KeyValueError::Backend(message)) if message.contains("overflow") => {
                    Err(KeyValueError::Overflow { key })
                }
                Err(e) => Err(e),
            }
        })
    }

    fn get_many(&self, bucket: BucketId, keys: Vec<String>) -> KeyValueFuture<Pairs> {
        if keys.is_empty() {
            return Box::pin(async { Ok(Vec::new()) });
        }
        let mut cmd = command("HMGET", &bucket);
        cmd.arg(&keys);
        let values = self.query::<Vec<Option<Vec<u8>>>>(cmd);
        Box::pin(async move {
            let values = values.await?;
            Ok(keys
                .into_iter()
                .zip(values)
                .map(|(key, value)| value.map(|v| (key, v)))
                .collect())
        })
    }

    fn set_many(&self, bucket: BucketId, pairs: Vec<(String, Vec<u8>)>) -> KeyValueFuture<()> {
        if pairs.is_empty() {
            return Box::pin(async { Ok(()) });
        }
        let mut cmd = command("HSET", &bucket);
        for (key, value) in pairs {
            cmd.arg(key).arg(value);
        }
        let done = self.query::<i64>(cmd);
        Box::pin(async move { done.await.map(drop) })
    }

    fn delete_many(&self, bucket: BucketId, keys: Vec<String>) -> KeyValueFuture<()> {
        if keys.is_empty() {
            return Box::pin(async { Ok(()) });
        }
        let mut cmd = command("HDEL", &bucket);
        cmd.arg(keys);
        let done = self.query::<i64>(cmd);
        Box::pin(async move { done.await.map(drop) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_are_not_shown() {
        assert_eq!(
            without_password("redis://127.0.0.1:6379"),
            "redis://127.0.0.1:6379"
        );
        assert_eq!(
            without_password("redis://:hunter2@cache:6379/1"),
            "redis://:***@cache:6379/1"
        );
        assert_eq!(
            without_password("rediss://app:hunter2@cache:6380"),
            "rediss://app:***@cache:6380"
        );
    }
}
