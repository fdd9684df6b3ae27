//! The fast path: a strict single-pass reader of CloudTrail records in S3 arrays (see
//! [`crate::scan`]), reading the same fields into the same [`Record`] as the serde derive,
//! and the UTF-8 check of a records array a block at a time.

use super::*;

/// The fast path (see [`crate::scan`]): reads the record whose first byte is at `start` of
/// `text` into `rec` (a fresh default) and returns the index just past it. `None` when the
/// serde path must decide: anything the scanner leaves to it, a duplicate field (serde
/// rejects the record), or a record wrapped in `CloudTrailEvent`. The record is filled in
/// place: it is large, and moving it by value was a tenth of this path's time.
pub(super) fn fast<'a>(text: &'a str, start: usize, rec: &mut Record<'a>) -> Option<usize> {
    let mut sc = Scan::new(text, start);
    record_fast(&mut sc, rec).ok()?;
    rec.wrapped.0.is_none().then_some(sc.pos)
}

/// Bytes of a records array checked as UTF-8 at a time, just ahead of the records read
/// from them: the block is still in cache when they are parsed. (Checking the whole array
/// first would read a file's worth of bytes from memory twice.)
pub(super) const UTF8_BLOCK: usize = 256 * 1024;

/// The part of a records array checked as UTF-8 (`text`, `None` when it is not), from
/// `from` to `end`, checked `block` bytes at a time ([`UTF8_BLOCK`] but in tests and fuzzing).
pub(super) struct Checked<'a> {
    from: usize,
    end: usize,
    text: Option<&'a str>,
    block: usize,
}

impl<'a> Checked<'a> {
    /// Checks `array[from..]` up to a block's length, or up to `min_end` when that is
    /// further; the end is moved back to a character boundary.
    pub(super) fn new(array: &'a [u8], from: usize, min_end: usize, block: usize) -> Self {
        let mut end = from.saturating_add(block).max(min_end).min(array.len());
        // Back off continuation bytes (at most three) so no character is cut.
        while end > from && array.get(end).is_some_and(|b| b & 0xC0 == 0x80) {
            end -= 1;
        }
        let text = array
            .get(from..end)
            .and_then(|b| std::str::from_utf8(b).ok());
        Checked {
            from,
            end,
            text,
            block,
        }
    }

    /// The fast path on the record at `start`, in the block holding it (a new one from
    /// `start` when the current one ends before).
    pub(super) fn fast(
        &mut self,
        array: &'a [u8],
        start: usize,
        rec: &mut Record<'a>,
    ) -> Option<usize> {
        if start < self.from || start >= self.end {
            *self = Checked::new(array, start, 0, self.block);
        }
        let t = self.text?;
        fast(t, start - self.from, rec).map(|end| self.from + end)
    }

    /// The fast path failed on the record `array[start..end]` (as the splitter found it):
    /// when the record runs past the checked block, checks from its start and tries again.
    pub(super) fn again(
        &mut self,
        array: &'a [u8],
        start: usize,
        end: usize,
        rec: &mut Record<'a>,
    ) -> Option<usize> {
        if start >= self.from && end <= self.end {
            return None;
        }
        *self = Checked::new(array, start, end, self.block);
        *rec = Record::default();
        self.fast(array, start, rec).filter(|&e| e == end)
    }
}

/// Marks field `bit` of an object seen; a second sighting is the serde path's to reject.
pub(super) fn once(seen: &mut u32, bit: u32) -> R<()> {
    if *seen & (1 << bit) != 0 {
        return Err(Bail);
    }
    *seen |= 1 << bit;
    Ok(())
}

/// Stores a field's value, once (see [`once`]).
pub(super) fn put<T>(seen: &mut u32, bit: u32, slot: &mut T, value: R<T>) -> R<()> {
    once(seen, bit)?;
    *slot = value?;
    Ok(())
}

/// A string field as [`JStr`] deserializes it.
pub(super) fn jstr<'a>(sc: &mut Scan<'a>, depth: usize) -> R<JStr<'a>> {
    Ok(match sc.scalar(depth)? {
        Scalar::Str(s) => JStr {
            text: LStr(Some(s)),
            json: Some(JsonKind::String),
        },
        Scalar::Bool(b) => JStr {
            text: LStr(Some(Cow::Borrowed(if b { "true" } else { "false" }))),
            json: Some(JsonKind::Other),
        },
        Scalar::Null | Scalar::Container => JStr {
            text: LStr(None),
            json: Some(JsonKind::Other),
        },
    })
}

pub(super) fn lstr<'a>(sc: &mut Scan<'a>, depth: usize) -> R<LStr<'a>> {
    jstr(sc, depth).map(|j| j.text)
}

/// An object field as [`Obj`] deserializes it, stored once (see [`once`]): `walk` reads
/// an object (the scanner at its `{`) into the field's value; any other value but a number
/// is skipped and leaves the field absent (the slot is fresh).
pub(super) fn put_obj<'a, T: Default>(
    seen: &mut u32,
    bit: u32,
    sc: &mut Scan<'a>,
    depth: usize,
    slot: &mut Obj<T>,
    walk: impl FnOnce(&mut Scan<'a>, usize, &mut T) -> R<()>,
) -> R<()> {
    once(seen, bit)?;
    match sc.peek() {
        Some(b'{') if depth < crate::scan::MAX_DEPTH => {
            walk(sc, depth + 1, slot.0.insert(T::default()))
        }
        Some(b'-' | b'0'..=b'9') | None => Err(Bail),
        Some(_) => sc.skip(depth),
    }
}

pub(super) fn record_fast<'a>(sc: &mut Scan<'a>, r: &mut Record<'a>) -> R<()> {
    let mut seen = 0;
    let d = 1;
    sc.ws();
    sc.object(|sc, key| {
        match key {
            "eventID" => put(&mut seen, 0, &mut r.event_id, lstr(sc, d))?,
            "eventTime" => put(&mut seen, 1, &mut r.event_time, lstr(sc, d))?,
            "eventSource" => put(&mut seen, 2, &mut r.event_source, lstr(sc, d))?,
            "eventName" => put(&mut seen, 3, &mut r.event_name, lstr(sc, d))?,
            "awsRegion" => put(&mut seen, 4, &mut r.aws_region, lstr(sc, d))?,
            "sourceIPAddress" => put(&mut seen, 5, &mut r.source_ip_address, lstr(sc, d))?,
            "userAgent" => put(&mut seen, 6, &mut r.user_agent, lstr(sc, d))?,
            "errorCode" => put(&mut seen, 7, &mut r.error_code, lstr(sc, d))?,
            "recipientAccountId" => put(&mut seen, 8, &mut r.recipient_account_id, lstr(sc, d))?,
            "sharedEventID" => put(&mut seen, 9, &mut r.shared_event_id, lstr(sc, d))?,
            "userIdentity" => put_obj(&mut seen, 10, sc, d, &mut r.user_identity, user_identity)?,
            "requestParameters" => {
                put_obj(&mut seen, 11, sc, d, &mut r.request_parameters, request)?
            }
            "responseElements" => {
                put_obj(&mut seen, 12, sc, d, &mut r.response_elements, response)?
            }
            "CloudTrailEvent" | "eventJson" | "eventjson" => {
                put(&mut seen, 13, &mut r.wrapped, lstr(sc, d))?
            }
            _ => sc.skip(d)?,
        };
        Ok(())
    })
}

pub(super) fn user_identity<'a>(sc: &mut Scan<'a>, d: usize, u: &mut UserIdentity<'a>) -> R<()> {
    let mut seen = 0;
    sc.object(|sc, key| {
        match key {
            "type" => put(&mut seen, 0, &mut u.ty, jstr(sc, d))?,
            "principalId" => put(&mut seen, 1, &mut u.principal_id, lstr(sc, d))?,
            "arn" => put(&mut seen, 2, &mut u.arn, jstr(sc, d))?,
            "accountId" => put(&mut seen, 3, &mut u.account_id, lstr(sc, d))?,
            "accessKeyId" => put(&mut seen, 4, &mut u.access_key_id, lstr(sc, d))?,
            "userName" => put(&mut seen, 5, &mut u.user_name, lstr(sc, d))?,
            "invokedBy" => put(&mut seen, 6, &mut u.invoked_by, lstr(sc, d))?,
            "identityProvider" => put(&mut seen, 7, &mut u.identity_provider, lstr(sc, d))?,
            "credentialId" => put(&mut seen, 8, &mut u.credential_id, lstr(sc, d))?,
            "sessionContext" => {
                put_obj(&mut seen, 9, sc, d, &mut u.session_context, session_context)?
            }
            "onBehalfOf" => put_obj(&mut seen, 10, sc, d, &mut u.on_behalf_of, on_behalf_of)?,
            _ => sc.skip(d)?,
        };
        Ok(())
    })
}

pub(super) fn session_context<'a>(
    sc: &mut Scan<'a>,
    d: usize,
    c: &mut SessionContext<'a>,
) -> R<()> {
    let mut seen = 0;
    sc.object(|sc, key| {
        match key {
            "sessionIssuer" => put_obj(&mut seen, 0, sc, d, &mut c.session_issuer, issuer)?,
            "webIdFederationData" => put_obj(
                &mut seen,
                1,
                sc,
                d,
                &mut c.web_id_federation_data,
                web_id_federation,
            )?,
            "sourceIdentity" => put(&mut seen, 2, &mut c.source_identity, lstr(sc, d))?,
            _ => sc.skip(d)?,
        };
        Ok(())
    })
}

pub(super) fn issuer<'a>(sc: &mut Scan<'a>, d: usize, i: &mut Issuer<'a>) -> R<()> {
    let mut seen = 0;
    sc.object(|sc, key| {
        match key {
            "type" => put(&mut seen, 0, &mut i.ty, jstr(sc, d))?,
            "principalId" => put(&mut seen, 1, &mut i.principal_id, lstr(sc, d))?,
            "arn" => put(&mut seen, 2, &mut i.arn, lstr(sc, d))?,
            "userName" => put(&mut seen, 3, &mut i.user_name, lstr(sc, d))?,
            _ => sc.skip(d)?,
        };
        Ok(())
    })
}

pub(super) fn web_id_federation<'a>(
    sc: &mut Scan<'a>,
    d: usize,
    w: &mut WebIdFederation<'a>,
) -> R<()> {
    let mut seen = 0;
    sc.object(|sc, key| {
        match key {
            "federatedProvider" => put(&mut seen, 0, &mut w.federated_provider, lstr(sc, d))?,
            // A map: a repeated key keeps its last value, as `BTreeMap` does.
            "attributes" => put_obj(&mut seen, 1, sc, d, &mut w.attributes, |sc, d, m| {
                sc.object(|sc, k| {
                    m.insert(k.to_owned(), lstr(sc, d)?);
                    Ok(())
                })
            })?,
            _ => sc.skip(d)?,
        };
        Ok(())
    })
}

pub(super) fn on_behalf_of<'a>(sc: &mut Scan<'a>, d: usize, o: &mut OnBehalfOf<'a>) -> R<()> {
    let mut seen = 0;
    sc.object(|sc, key| {
        match key {
            "userId" => put(&mut seen, 0, &mut o.user_id, lstr(sc, d))?,
            "identityStoreArn" => put(&mut seen, 1, &mut o.identity_store_arn, lstr(sc, d))?,
            _ => sc.skip(d)?,
        };
        Ok(())
    })
}

pub(super) fn request<'a>(sc: &mut Scan<'a>, d: usize, q: &mut Request<'a>) -> R<()> {
    let mut seen = 0;
    sc.object(|sc, key| {
        match key {
            "roleArn" => put(&mut seen, 0, &mut q.role_arn, lstr(sc, d))?,
            "roleSessionName" => put(&mut seen, 1, &mut q.role_session_name, lstr(sc, d))?,
            "sourceIdentity" => put(&mut seen, 2, &mut q.source_identity, lstr(sc, d))?,
            "userName" => put(&mut seen, 3, &mut q.user_name, lstr(sc, d))?,
            "roleName" => put(&mut seen, 4, &mut q.role_name, lstr(sc, d))?,
            "accessKeyId" => put(&mut seen, 5, &mut q.access_key_id, lstr(sc, d))?,
            "status" => put(&mut seen, 6, &mut q.status, lstr(sc, d))?,
            "name" => put(&mut seen, 7, &mut q.name, lstr(sc, d))?,
            "assumeRolePolicyDocument" => put(
                &mut seen,
                8,
                &mut q.assume_role_policy_document,
                lstr(sc, d),
            )?,
            "policyDocument" => put(&mut seen, 9, &mut q.policy_document, lstr(sc, d))?,
            _ => sc.skip(d)?,
        };
        Ok(())
    })
}

pub(super) fn response<'a>(sc: &mut Scan<'a>, d: usize, p: &mut Response<'a>) -> R<()> {
    let mut seen = 0;
    sc.object(|sc, key| {
        match key {
            "credentials" => put_obj(&mut seen, 0, sc, d, &mut p.credentials, creds)?,
            "assumedRoleUser" => put_obj(
                &mut seen,
                1,
                sc,
                d,
                &mut p.assumed_role_user,
                assumed_role_user,
            )?,
            "subjectFromWebIdentityToken" => put(
                &mut seen,
                2,
                &mut p.subject_from_web_identity_token,
                lstr(sc, d),
            )?,
            "provider" => put(&mut seen, 3, &mut p.provider, lstr(sc, d))?,
            "audience" => put(&mut seen, 4, &mut p.audience, lstr(sc, d))?,
            "sourceIdentity" => put(&mut seen, 5, &mut p.source_identity, lstr(sc, d))?,
            "accessKey" => put_obj(&mut seen, 6, sc, d, &mut p.access_key, access_key)?,
            "user" => put_obj(&mut seen, 7, sc, d, &mut p.user, principal)?,
            "role" => put_obj(&mut seen, 8, sc, d, &mut p.role, principal)?,
            "federatedUser" => put_obj(&mut seen, 9, sc, d, &mut p.federated_user, federated_user)?,
            _ => sc.skip(d)?,
        };
        Ok(())
    })
}

pub(super) fn creds<'a>(sc: &mut Scan<'a>, d: usize, c: &mut Creds<'a>) -> R<()> {
    let mut seen = 0;
    sc.object(|sc, key| {
        match key {
            "accessKeyId" => put(&mut seen, 0, &mut c.access_key_id, lstr(sc, d))?,
            _ => sc.skip(d)?,
        };
        Ok(())
    })
}

pub(super) fn assumed_role_user<'a>(
    sc: &mut Scan<'a>,
    d: usize,
    a: &mut AssumedRoleUser<'a>,
) -> R<()> {
    let mut seen = 0;
    sc.object(|sc, key| {
        match key {
            "arn" => put(&mut seen, 0, &mut a.arn, lstr(sc, d))?,
            _ => sc.skip(d)?,
        };
        Ok(())
    })
}

pub(super) fn access_key<'a>(sc: &mut Scan<'a>, d: usize, k: &mut AccessKey<'a>) -> R<()> {
    let mut seen = 0;
    sc.object(|sc, key| {
        match key {
            "accessKeyId" => put(&mut seen, 0, &mut k.access_key_id, lstr(sc, d))?,
            "userName" => put(&mut seen, 1, &mut k.user_name, lstr(sc, d))?,
            "status" => put(&mut seen, 2, &mut k.status, lstr(sc, d))?,
            "createDate" => put(&mut seen, 3, &mut k.create_date, lstr(sc, d))?,
            _ => sc.skip(d)?,
        };
        Ok(())
    })
}

pub(super) fn principal<'a>(sc: &mut Scan<'a>, d: usize, p: &mut Principal<'a>) -> R<()> {
    let mut seen = 0;
    sc.object(|sc, key| {
        match key {
            "userName" => put(&mut seen, 0, &mut p.user_name, lstr(sc, d))?,
            "roleName" => put(&mut seen, 1, &mut p.role_name, lstr(sc, d))?,
            "arn" => put(&mut seen, 2, &mut p.arn, lstr(sc, d))?,
            "userId" => put(&mut seen, 3, &mut p.user_id, lstr(sc, d))?,
            "roleId" => put(&mut seen, 4, &mut p.role_id, lstr(sc, d))?,
            "createDate" => put(&mut seen, 5, &mut p.create_date, lstr(sc, d))?,
            _ => sc.skip(d)?,
        };
        Ok(())
    })
}

pub(super) fn federated_user<'a>(sc: &mut Scan<'a>, d: usize, f: &mut FederatedUser<'a>) -> R<()> {
    let mut seen = 0;
    sc.object(|sc, key| {
        match key {
            "arn" => put(&mut seen, 0, &mut f.arn, lstr(sc, d))?,
            _ => sc.skip(d)?,
        };
        Ok(())
    })
}
