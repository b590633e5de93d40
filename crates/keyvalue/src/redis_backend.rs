//! Buckets in a Redis server: one hash per bucket, named
//! `stratus:kv:<app>:<bucket>` (app and bucket names cannot hold `:`, so no
//! two buckets share a hash), and one hash per app, `stratus:kv-usage:<app>`,
//! with what the app stores (`bytes`, `keys`) against its quota.
//!
//! Every write is a Lua script that checks the quota, writes and updates the
//! usage: Redis runs a script atomically, so no other write comes between
//! the check and the write, on this node or any other sharing the server.

use std::sync::Arc;
use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{Client, Cmd, FromRedisValue};
use stratus_storage::{BucketId, KeyValueBackend, KeyValueError, KeyValueFuture, Pairs};
use tokio::sync::OnceCell;

use crate::{KeyValueSetupError, Quota};

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
    quota: Quota,
}

impl std::fmt::Debug for RedisKeyValue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisKeyValue")
            .field("url", &self.url)
            .finish_non_exhaustive()
    }
}

impl RedisKeyValue {
    pub fn new(url: &str, quota: Quota) -> Result<RedisKeyValue, KeyValueSetupError> {
        let client = Client::open(url).map_err(|e| KeyValueSetupError::RedisUrl {
            url: url.to_string(),
            reason: e.to_string(),
        })?;
        Ok(RedisKeyValue {
            client,
            url: url.to_string(),
            connection: Arc::new(OnceCell::new()),
            quota,
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

    /// Runs a write script on `bucket` with `args` after the common ones
    /// (see `quota_script!`) and reads its answer: empty when done,
    /// `ok` and a value when it answers one, or the quota it would pass.
    fn write(
        &self,
        script: &'static str,
        bucket: &BucketId,
        args: Vec<Vec<u8>>,
    ) -> KeyValueFuture<Option<String>> {
        let mut cmd = redis::cmd("EVAL");
        cmd.arg(script)
            .arg(2)
            .arg(hash(bucket))
            .arg(usage_hash(&bucket.app))
            .arg(&bucket.bucket)
            .arg(self.quota.max_bytes)
            .arg(self.quota.max_keys)
            .arg(args);
        let reply = self.query::<Vec<String>>(cmd);
        let quota = self.quota;
        Box::pin(async move {
            let reply = reply.await?;
            match reply.as_slice() {
                [] => Ok(None),
                [ok, value] if ok == "ok" => Ok(Some(value.clone())),
                [kind, used, adding] => {
                    let number = |text: &str| text.parse::<u64>().unwrap_or(0);
                    let (used, adding) = (number(used), number(adding));
                    Err(if kind == "keys" {
                        KeyValueError::KeysQuota {
                            limit: quota.max_keys,
                            used,
                            adding,
                        }
                    } else {
                        KeyValueError::BytesQuota {
                            limit: quota.max_bytes,
                            used,
                            adding,
                        }
                    })
                }
                other => Err(KeyValueError::Backend(format!(
                    "redis: a key-value script answered {other:?}"
                ))),
            }
        })
    }
}

/// The start of every write script. `KEYS[1]` is the bucket's hash,
/// `KEYS[2]` the app's usage hash; `ARGV[1]` the bucket's name, `ARGV[2]`
/// and `ARGV[3]` the quota's bytes and keys; the script's own arguments
/// follow from `ARGV[4]`.
///
/// A bucket written before quotas existed is counted into its app's usage
/// the first time a write reaches it (the `bucket:<name>` field marks it
/// counted), so existing data counts and deleting it cannot drive the
/// usage below zero.
macro_rules! quota_script {
    ($body:literal) => {
        concat!(
            r"
local function int(n) return string.format('%d', n) end
if redis.call('HSETNX', KEYS[2], 'bucket:' .. ARGV[1], 1) == 1 then
  local bytes, keys = 0, 0
  for _, k in ipairs(redis.call('HKEYS', KEYS[1])) do
    bytes = bytes + #k + redis.call('HSTRLEN', KEYS[1], k)
    keys = keys + 1
  end
  redis.call('HINCRBY', KEYS[2], 'bytes', int(bytes))
  redis.call('HINCRBY', KEYS[2], 'keys', int(keys))
end
-- Why a write growing the usage by these amounts is refused, or nil.
local function refused(dbytes, dkeys)
  local bytes = tonumber(redis.call('HGET', KEYS[2], 'bytes') or '0')
  local keys = tonumber(redis.call('HGET', KEYS[2], 'keys') or '0')
  if dbytes > 0 and bytes + dbytes > tonumber(ARGV[2]) then
    return {'bytes', int(bytes), int(dbytes)}
  end
  if dkeys > 0 and keys + dkeys > tonumber(ARGV[3]) then
    return {'keys', int(keys), int(dkeys)}
  end
  return nil
end
local function add(dbytes, dkeys)
  redis.call('HINCRBY', KEYS[2], 'bytes', int(dbytes))
  redis.call('HINCRBY', KEYS[2], 'keys', int(dkeys))
end
",
            $body
        )
    };
}

/// `set` and `set-many`: `ARGV[4..]` are key, value, key, value, ... The
/// whole batch is measured first (a key given twice counts as its last
/// value), then written, or refused with nothing written.
const SET_SCRIPT: &str = quota_script!(
    r"
local seen, dbytes, dkeys = {}, 0, 0
for i = 4, #ARGV, 2 do
  local k, v = ARGV[i], ARGV[i + 1]
  local old = seen[k]
  if old == nil then
    if redis.call('HEXISTS', KEYS[1], k) == 1 then
      old = redis.call('HSTRLEN', KEYS[1], k)
    else
      old = false
    end
  end
  if old then
    dbytes = dbytes + #v - old
  else
    dbytes = dbytes + #k + #v
    dkeys = dkeys + 1
  end
  seen[k] = #v
end
local no = refused(dbytes, dkeys)
if no then return no end
for i = 4, #ARGV, 2 do
  redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1])
end
add(dbytes, dkeys)
return {}
"
);

/// `delete` and `delete-many`: `ARGV[4..]` are the keys. Frees what they
/// held.
const DELETE_SCRIPT: &str = quota_script!(
    r"
local dbytes, dkeys = 0, 0
for i = 4, #ARGV do
  local k = ARGV[i]
  local size = redis.call('HSTRLEN', KEYS[1], k)
  if redis.call('HDEL', KEYS[1], k) == 1 then
    dbytes = dbytes - #k - size
    dkeys = dkeys - 1
  end
end
add(dbytes, dkeys)
return {}
"
);

/// `HINCRBY` of `ARGV[4]` by `ARGV[5]`, refusing what the SQLite backend
/// refuses too: a value that is not a plain decimal number.
/// The new number is measured after the increment and put back if it
/// passes the quota (the script is atomic: nobody sees it); it is answered
/// as the text Redis stored, exact beyond Lua's 2^53.
const INCREMENT_SCRIPT: &str = quota_script!(
    r"
local k = ARGV[4]
local old = redis.call('HGET', KEYS[1], k)
if old and not string.match(old, '^-?[0-9]+$') then
  return redis.error_reply('ERR hash value is not an integer')
end
redis.call('HINCRBY', KEYS[1], k, ARGV[5])
local new = redis.call('HGET', KEYS[1], k)
local dbytes, dkeys = #k + #new, 1
if old then
  dbytes, dkeys = #new - #old, 0
end
local no = refused(dbytes, dkeys)
if no then
  if old then
    redis.call('HSET', KEYS[1], k, old)
  else
    redis.call('HDEL', KEYS[1], k)
  end
  return no
end
add(dbytes, dkeys)
return {'ok', new}
"
);

/// `compare-and-swap`: writes `ARGV[5]` at `ARGV[4]` if the key holds
/// `ARGV[7]` now (when `ARGV[6]` is `1`) or is not set (`0`); answers
/// `swapped` or `stale`.
const COMPARE_AND_SWAP_SCRIPT: &str = quota_script!(
    r"
local k, v = ARGV[4], ARGV[5]
local old = redis.call('HGET', KEYS[1], k)
if ARGV[6] == '1' then
  if not old or old ~= ARGV[7] then return {'ok', 'stale'} end
elseif old then
  return {'ok', 'stale'}
end
local dbytes, dkeys = #k + #v, 1
if old then
  dbytes, dkeys = #v - #old, 0
end
local no = refused(dbytes, dkeys)
if no then return no end
redis.call('HSET', KEYS[1], k, v)
add(dbytes, dkeys)
return {'ok', 'swapped'}
"
);

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

fn usage_hash(app: &str) -> String {
    format!("stratus:kv-usage:{app}")
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
        let done = self.write(SET_SCRIPT, &bucket, vec![key.into_bytes(), value]);
        Box::pin(async move { done.await.map(drop) })
    }

    fn delete(&self, bucket: BucketId, key: String) -> KeyValueFuture<()> {
        let done = self.write(DELETE_SCRIPT, &bucket, vec![key.into_bytes()]);
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

    fn increment(&self, bucket: BucketId, key: String, delta: i64) -> KeyValueFuture<i64> {
        let sum = self.write(
            INCREMENT_SCRIPT,
            &bucket,
            vec![key.clone().into_bytes(), delta.to_string().into_bytes()],
        );
        Box::pin(async move {
            match sum.await {
                Ok(n) => n
                    .and_then(|n| n.parse::<i64>().ok())
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

    fn compare_and_swap(
        &self,
        bucket: BucketId,
        key: String,
        expected: Option<Vec<u8>>,
        value: Vec<u8>,
    ) -> KeyValueFuture<bool> {
        let mut args = vec![key.into_bytes(), value];
        match expected {
            Some(expected) => args.extend([b"1".to_vec(), expected]),
            None => args.push(b"0".to_vec()),
        }
        let answer = self.write(COMPARE_AND_SWAP_SCRIPT, &bucket, args);
        Box::pin(async move {
            match answer.await?.as_deref() {
                Some("swapped") => Ok(true),
                Some("stale") => Ok(false),
                other => Err(KeyValueError::Backend(format!(
                    "redis: the compare-and-swap script answered {other:?}"
                ))),
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
        let args = pairs
            .into_iter()
            .flat_map(|(key, value)| [key.into_bytes(), value])
            .collect();
        let done = self.write(SET_SCRIPT, &bucket, args);
        Box::pin(async move { done.await.map(drop) })
    }

    fn delete_many(&self, bucket: BucketId, keys: Vec<String>) -> KeyValueFuture<()> {
        if keys.is_empty() {
            return Box::pin(async { Ok(()) });
        }
        let args = keys.into_iter().map(String::into_bytes).collect();
        let done = self.write(DELETE_SCRIPT, &bucket, args);
        Box::pin(async move { done.await.map(drop) })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    /// A bucket written before quotas existed has no usage yet: the first
    /// write that reaches it counts what it holds, so the quota applies to
    /// it and deleting it frees no more than it held.
    #[tokio::test]
    async fn buckets_stored_before_quotas_are_counted_on_first_write() {
        let quota = Quota {
            max_bytes: 100,
            max_keys: 10,
        };
        let kv = RedisKeyValue::new("redis://127.0.0.1:6379", quota).unwrap();
        let old = BucketId {
            app: format!("legacy-{}", uuid::Uuid::now_v7().simple()),
            bucket: "default".into(),
        };
        let mut raw = command("HSET", &old);
        raw.arg("k1")
            .arg(vec![0u8; 48])
            .arg("k2")
            .arg(vec![0u8; 28]);
        kv.query::<i64>(raw).await.unwrap();
        // 50 + 30 stored; 1 + 20 more would pass 100.
        let err = kv
            .set(old.clone(), "x".into(), vec![0; 20])
            .await
            .unwrap_err();
        assert!(
            matches!(
                err,
                KeyValueError::BytesQuota {
                    limit: 100,
                    used: 80,
                    adding: 21
                }
            ),
            "{err}"
        );
        kv.delete_many(old.clone(), vec!["k1".into(), "k2".into()])
            .await
            .unwrap();
        let mut usage = redis::cmd("HMGET");
        usage.arg(usage_hash(&old.app)).arg("bytes").arg("keys");
        let (bytes, keys) = kv.query::<(i64, i64)>(usage).await.unwrap();
        assert_eq!((bytes, keys), (0, 0));
    }

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
