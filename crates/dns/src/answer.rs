//! Answering one DNS message from the zone table: authoritative answers
//! for the cluster zone (NXDOMAIN and NODATA carry the zone's SOA, as
//! CoreDNS's), and `None` for names outside it, which the server forwards.

use hickory_proto::op::{Message, MessageType, OpCode, ResponseCode};
use hickory_proto::rr::rdata::{A, AAAA, CNAME, PTR, SOA, SRV};
use hickory_proto::rr::{Name, RData, Record, RecordType};

use crate::records::{Entry, Lookup, Table};

/// Seconds clients may cache an answer (CoreDNS's default `ttl 5`).
pub const TTL: u32 = 5;

/// What to do with a query.
#[derive(Debug)]
pub enum Reply {
    /// Send this response.
    Answer(Message),
    /// Not ours: forward the raw query.
    Forward,
}

/// The response to `request`, or [`Reply::Forward`].
pub fn answer(request: &Message, table: &Table) -> Reply {
    let mut resp = Message::new();
    resp.set_id(request.id())
        .set_message_type(MessageType::Response)
        .set_op_code(request.op_code())
        .set_recursion_desired(request.recursion_desired())
        .set_recursion_available(true);
    if request.op_code() != OpCode::Query || request.queries().len() != 1 {
        resp.set_response_code(ResponseCode::NotImp);
        return Reply::Answer(resp);
    }
    let q = request.queries()[0].clone();
    resp.add_query(q.clone());
    let qname = q.name().to_ascii();
    let entry = match table.lookup(&qname) {
        Lookup::Outside => return Reply::Forward,
        Lookup::NoSuchName => {
            resp.set_authoritative(true)
                .set_response_code(ResponseCode::NXDomain);
            add_soa(&mut resp, table);
            return Reply::Answer(resp);
        }
        Lookup::Found(e) => e.into_owned(),
    };
    resp.set_authoritative(true);
    let name = q.name().clone();
    let records = records_for(&name, &entry, q.query_type());
    if records.is_empty() {
        add_soa(&mut resp, table);
    }
    resp.add_answers(records);
    Reply::Answer(resp)
}

fn records_for(name: &Name, e: &Entry, t: RecordType) -> Vec<Record> {
    let mut out = Vec::new();
    if let Some(target) = &e.cname {
        if let Ok(n) = Name::from_ascii(format!("{target}.")) {
            out.push(Record::from_rdata(
                name.clone(),
                TTL,
                RData::CNAME(CNAME(n)),
            ));
        }
        return out;
    }
    let want = |x: RecordType| t == x || t == RecordType::ANY;
    if want(RecordType::A) {
        for ip in &e.a {
            out.push(Record::from_rdata(name.clone(), TTL, RData::A(A(*ip))));
        }
    }
    if want(RecordType::AAAA) {
        for ip in &e.aaaa {
            out.push(Record::from_rdata(
                name.clone(),
                TTL,
                RData::AAAA(AAAA(*ip)),
            ));
        }
    }
    if want(RecordType::PTR) {
        for target in &e.ptr {
            if let Ok(n) = Name::from_ascii(format!("{target}.")) {
                out.push(Record::from_rdata(name.clone(), TTL, RData::PTR(PTR(n))));
            }
        }
    }
    if want(RecordType::SRV) {
        for (prio, weight, port, target) in &e.srv {
            if let Ok(n) = Name::from_ascii(format!("{target}.")) {
                let srv = SRV::new(*prio, *weight, *port, n);
                out.push(Record::from_rdata(name.clone(), TTL, RData::SRV(srv)));
            }
        }
    }
    out
}

fn add_soa(resp: &mut Message, table: &Table) {
    let zone = table.zone();
    let (Ok(origin), Ok(mname), Ok(rname)) = (
        Name::from_ascii(format!("{zone}.")),
        Name::from_ascii(format!("ns.dns.{zone}.")),
        Name::from_ascii(format!("hostmaster.{zone}.")),
    ) else {
        return;
    };
    // CoreDNS's values: serial, refresh 7200, retry 1800, expire 86400, minimum = ttl.
    let soa = SOA::new(mname, rname, 1, 7200, 1800, 86400, TTL);
    resp.add_name_server(Record::from_rdata(origin, TTL, RData::SOA(soa)));
}

/// A SERVFAIL for `request` (the upstream resolvers failed).
pub fn servfail(request: &Message) -> Message {
    let mut resp = Message::new();
    resp.set_id(request.id())
        .set_message_type(MessageType::Response)
        .set_op_code(request.op_code())
        .set_recursion_desired(request.recursion_desired())
        .set_recursion_available(true)
        .set_response_code(ResponseCode::ServFail);
    for q in request.queries() {
        resp.add_query(q.clone());
    }
    resp
}

#[cfg(test)]
mod tests {
    use super::*;
    use hickory_proto::op::Query;

    fn query(name: &str, t: RecordType) -> Message {
        let mut m = Message::new();
        m.set_id(77).set_recursion_desired(true);
        m.add_query(Query::query(Name::from_ascii(name).unwrap(), t));
        m
    }

    fn table() -> Table {
        let svc: k8s_openapi::api::core::v1::Service = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "web", "namespace": "default"},
            "spec": {"clusterIP": "10.43.0.20", "ports": [{"name": "http", "port": 80}]}}))
        .unwrap();
        Table::build("cluster.local", &[svc], &[])
    }

    fn answered(r: Reply) -> Message {
        match r {
            Reply::Answer(m) => m,
            Reply::Forward => panic!("forwarded"),
        }
    }

    #[test]
    fn a_service_name_is_answered_authoritatively() {
        let m = answered(answer(
            &query("web.default.svc.cluster.local.", RecordType::A),
            &table(),
        ));
        assert_eq!(m.id(), 77);
        assert!(m.authoritative());
        assert_eq!(m.response_code(), ResponseCode::NoError);
        assert_eq!(m.answers().len(), 1);
        assert_eq!(
            m.answers()[0].data(),
            &RData::A(A("10.43.0.20".parse().unwrap()))
        );
        // The wire form round-trips.
        let bytes = m.to_vec().unwrap();
        assert_eq!(Message::from_vec(&bytes).unwrap().answers().len(), 1);
    }

    #[test]
    fn a_cluster_ip_answers_ptr_and_other_reverse_names_are_forwarded() {
        let m = answered(answer(
            &query("20.0.43.10.in-addr.arpa.", RecordType::PTR),
            &table(),
        ));
        assert!(m.authoritative());
        assert_eq!(
            m.answers()[0].data(),
            &RData::PTR(PTR(
                Name::from_ascii("web.default.svc.cluster.local.").unwrap()
            ))
        );
        assert!(matches!(
            answer(
                &query("1.1.168.192.in-addr.arpa.", RecordType::PTR),
                &table()
            ),
            Reply::Forward
        ));
    }

    #[test]
    fn missing_names_and_types_carry_the_soa() {
        let t = table();
        let nx = answered(answer(
            &query("nope.default.svc.cluster.local.", RecordType::A),
            &t,
        ));
        assert_eq!(nx.response_code(), ResponseCode::NXDomain);
        assert_eq!(nx.name_servers()[0].record_type(), RecordType::SOA);
        let nodata = answered(answer(
            &query("web.default.svc.cluster.local.", RecordType::AAAA),
            &t,
        ));
        assert_eq!(nodata.response_code(), ResponseCode::NoError);
        assert!(nodata.answers().is_empty());
        assert_eq!(nodata.name_servers().len(), 1);
        let srv = answered(answer(
            &query("_http._tcp.web.default.svc.cluster.local.", RecordType::SRV),
            &t,
        ));
        assert_eq!(srv.answers()[0].record_type(), RecordType::SRV);
    }

    #[test]
    fn other_names_are_forwarded() {
        assert!(matches!(
            answer(&query("example.org.", RecordType::A), &table()),
            Reply::Forward
        ));
    }
}
