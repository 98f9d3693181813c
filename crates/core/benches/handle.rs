//! Events per second through `Core::handle`, on a national-sized plan: 100 CTAs, 1,000 call-takers,
//! calls arriving, ringing, answered, hung up, with wrap-up and abandonment.

use std::hint::black_box;
use std::sync::Arc;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use secourir_config::{Departement, Plan};
use secourir_core::*;

const ZONES: usize = 100;
const AGENTS_PER_CTA: u32 = 10;

fn plan() -> Arc<Plan> {
    let mut toml = String::from(
        "[national]\ncapacity = 4000\nreserved_share = 0.5\nrule_set = \"national\"\ndefault_departement = \"z0\"\n\
         [defaults]\nmode = \"acd\"\nwrap_up_s = 5\n\
         [[announcement]]\nid = \"attente\"\ntext = \"Ne quittez pas.\"\n",
    );
    for z in 0..ZONES {
        let partner = (z + 1) % ZONES;
        toml.push_str(&format!(
            "[[cta]]\nid = \"cta-{z}\"\nname = \"CTA {z}\"\ndepartements = [\"z{z}\"]\npartners = [\"cta-{partner}\"]\nstaffing = {{ day = 10, night = 10 }}\nwait_announcement = \"attente\"\n"
        ));
    }
    toml.push_str(
        "[[rule_set]]\nid = \"national\"\n\
         [[rule_set.rule]]\nname = \"injoignable\"\nwhen = { failed = [\"unreachable\", \"full\"] }\nroute = \"partners\"\n\
         [[rule_set.rule]]\nname = \"entraide\"\nwhen = { failed = [\"no-answer\"] }\noverflow = \"partners\"\n\
         [[rule_set.rule]]\nname = \"défaut\"\nroute = \"home\"\n",
    );
    let codes: Vec<String> = (0..ZONES).map(|z| format!("z{z}")).collect();
    let territory: Vec<Departement<'_>> = codes
        .iter()
        .map(|c| Departement {
            code: c,
            population: 600_000,
        })
        .collect();
    Arc::new(Plan::from_toml(&toml, &territory).expect("bench plan"))
}

/// A deterministic stretch of heavy national traffic replayed through a fresh core: about 40 calls
/// a second, call-takers answer at once and talk 10 to 30 s (about 80% occupancy), one caller in ten gives up queued.
fn run(plan: &Arc<Plan>, calls: u64) -> u64 {
    let mut core = Core::new(Arc::clone(plan));
    let mut now = 1_700_000_000_000u64;
    let mut rng = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = move || {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng
    };
    let mut driver = Driver {
        events: 0,
        talking: std::collections::BinaryHeap::new(),
        inbox: Vec::new(),
        scratch: Vec::new(),
    };
    for cta in 0..ZONES as u16 {
        for seat in 0..AGENTS_PER_CTA {
            let agent = AgentId(u32::from(cta) * 100 + seat);
            let login = Event::AgentLogin {
                agent,
                cta: CtaId(cta),
                site: 0,
                dequeue_preference: 3,
            };
            driver.feed(&mut core, login, now, 0);
        }
    }
    for call in 0..calls {
        now += 1 + next() % 50;
        while let Some(std::cmp::Reverse((end, agent, id))) = driver.talking.peek().copied() {
            if end > now {
                break;
            }
            driver.talking.pop();
            let hang_up = Event::AgentHungUp {
                agent: AgentId(agent),
                call: CallId(id),
            };
            driver.feed(&mut core, hang_up, end, next());
        }
        let offer = Event::Offered(Offer {
            call: CallId(call),
            zone: ZoneId((next() % ZONES as u64) as u16),
            service: Service::Fire,
            resource_priority: None,
            caller: None,
            source: None,
            place: None,
            suspected: false,
            refused: None,
            medium: Default::default(),
        });
        driver.feed(&mut core, offer, now, next());
        if next() % 10 == 0
            && core
                .call(CallId(call))
                .is_some_and(|c| c.status == CallStatus::Queued)
        {
            driver.feed(
                &mut core,
                Event::CallerHungUp { call: CallId(call) },
                now,
                next(),
            );
        }
        if call % 8 == 0 {
            driver.feed(&mut core, Event::Tick, now, next());
        }
    }
    driver.events
}

/// Feeds events and answers every ring at once, as fast phones would.
struct Driver {
    events: u64,
    talking: std::collections::BinaryHeap<std::cmp::Reverse<(u64, u32, u64)>>,
    inbox: Vec<Event>,
    scratch: Vec<Command>,
}

impl Driver {
    fn feed(&mut self, core: &mut Core, event: Event, now: u64, random: u64) {
        self.inbox.push(event);
        while let Some(event) = self.inbox.pop() {
            self.events += 1;
            self.scratch.clear();
            self.scratch.extend(core.handle(event, Instant(now)));
            for command in &self.scratch {
                if let Command::Ring { call, agent } = command {
                    self.inbox.push(Event::AgentAnswered {
                        agent: *agent,
                        call: *call,
                    });
                    let talk = now + 10_000 + random % 20_000;
                    self.talking
                        .push(std::cmp::Reverse((talk, agent.0, call.0)));
                }
            }
            black_box(&self.scratch);
        }
    }
}

fn bench(c: &mut Criterion) {
    let plan = plan();
    let calls = 20_000;
    let events = run(&plan, calls);
    let mut group = c.benchmark_group("core");
    group.throughput(Throughput::Elements(events));
    group.sample_size(20);
    group.bench_function("handle", |b| b.iter(|| run(&plan, calls)));
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
