/*
 * multicast-buffer: the protocol of issue 17, as a Promela model for Spin.
 *
 * The producer gates on the consumers' cursors (a cached gate, rescanned only when its write
 * position would reach it) and never writes a count. Each slot holds the value, `readers` (how
 * many it was published for, written by the producer with the value) and `done` (written only
 * by consumers; at rest 0). A value with one reader never touches `done`. A reader of a value
 * with several readers clones it, then adds one to `done`; the one that makes `done` reach
 * `readers` is the last: it resets `done` to 0, moves the value out, and only then publishes
 * its cursor. Every consumer publishes its cursor after it is done with the values before it.
 *
 * verification/README.md has the state tables: every transition named in a comment here
 * (in CAPITALS) is a row there, with the atomic operation and ordering the Rust code uses.
 *
 * Run: bash ci/verify.sh (every configuration, bug and probe), or by hand:
 *   spin -a -DCAPACITY=2 protocol.pml && gcc -O2 -DSAFETY -DCOLLAPSE -o pan pan.c && ./pan -m100000
 * -DSCENARIO=0..3 picks the membership changes (see SCENARIO below), -DVALUES the number of
 * values published. Injected bugs (each must make the check fail): -DBUG_CURSOR_BEFORE_RESET,
 * -DBUG_CURSOR_BEFORE_READ, -DBUG_GATE_MISSES_JOIN, -DBUG_LEAVE_NEEDS_PRODUCER,
 * -DBUG_DETACH_TAKES_CLAIM, -DBUG_TAKE_OVER_CURSOR_FIRST.
 * Reachability probes (each must make the check fail, proving the scenario is explored):
 * -DREACH=1 .. -DREACH=8, see the end of `init`.
 */

#ifndef CAPACITY
#define CAPACITY 2
#endif
#define CAP CAPACITY
/* Positions wrap modulo W, a power of two larger than 2 * CAP (the code: 2^(usize::BITS - 3)). */
#define W (4 * CAP)
/* Values the producer publishes before it closes. */
#ifndef VALUES
#define VALUES (CAP + 3)
#endif
/* The first position: two values before the wrap, so every run crosses it. */
#define START (W - 2)
#define SEATS 3
/* Which membership changes the run makes: 0 = none; 1 = consumer 0 detaches consumer 1 (also
 * mid-read), which then rejoins; 2 = consumer 0 leaves and subscribes again; 3 = both. */
#ifndef SCENARIO
#define SCENARIO 3
#endif

/* The one distance rule: how far `a` is ahead of `b`. Real distances are at most CAP, far below
 * W / 2 (asserted wherever a counted cursor is measured), so the wrapping difference is exact. */
#define AHEAD(a, b) (((a) + W - (b)) % W)
#define NEXT(p) (((p) + 1) % W)
#define SLOT(p) ((p) % CAP)
/* Values are sequence numbers: value v is published at position POS_OF(v). */
#define POS_OF(v) ((START + (v)) % W)

/* Seat word = cursor + a 3-bit state. Bit 0 is CLAIM, bit 1 is STOP (see the README's table). */
#define RUN 0          /* counted, evictable, nothing claimed */
#define CLAIMED 1      /* counted, evictable, reading the value at its cursor */
#define STOP 2         /* counted until applied: detached or left; cursor = frontier */
#define STOP_CLAIMED 3 /* detached mid-read: the claimed value still holds the producer */
#define TETHER 4       /* counted, tethered: only its holder writes the word */
#define JOIN 5         /* not counted: asks to be, from the producer's next value on */
#define VACANT 6       /* not counted, free */
#define COUNTED(st) ((st) <= TETHER)

/* Membership-request word. */
#define REQUEST 1      /* a seat asked for something: the producer rescans before its next value */
#define CLOSING 2      /* the publisher has gone: every requester applies its own request */

/* ---- shared words ---- */
byte tail = START;     /* write word: the write position ... */
bool closed;           /* ... and its CLOSED flag (one word: read and written together) */
byte req;              /* membership-request word */
byte cursor[SEATS];    /* seat words: cursor ... */
byte state[SEATS];     /* ... and state (one word: read and written together) */
byte val[CAP];         /* slot: the value (a sequence number), plain memory */
byte readers[CAP];     /* slot: readers it was published for, plain memory */
byte done[CAP];        /* slot: the consumers' count, atomic */

/* ---- ghosts: never read by the protocol, only by assertions ---- */
bool present[CAP];          /* the slot holds a value not yet moved out */
byte published_for[VALUES]; /* readers of value v */
byte reached[VALUES];       /* reads + given-back shares of value v */
byte moved_out[VALUES];     /* times value v left its slot (to a reader or dropped) */
#ifdef REACH
/* reachability probes (only with -DREACH: each flag multiplies the state space) */
bool r_mid, r_join_prod, r_takeover, r_cancel, r_lost, r_full, r_join_self, r_reuse;
#define SEEN(flag) flag = 1
#else
#define SEEN(flag) skip
#endif

/* ---- give back a share (a counted seat that will not read the value) ---- */
/* Locals of the caller: gs, gv, gq, glast. */
inline give_back_one(q) {
  d_step {
    gs = SLOT(q);
    assert(present[gs] && POS_OF(val[gs]) == q); /* published, not yet released */
    gv = val[gs];
    glast = (readers[gs] == 1);
    if
    :: glast -> present[gs] = 0; reached[gv]++; moved_out[gv]++ /* GIVE_SOLE: move out, drop */
    :: else -> skip
    fi
  };
  if
  :: glast -> skip
  :: else ->
     d_step { done[gs]++; reached[gv]++; glast = (done[gs] == readers[gs]) } /* DONE_ADD */
     if
     :: glast ->
        done[gs] = 0; /* DONE_RESET */
        d_step { assert(present[gs]); present[gs] = 0; moved_out[gv]++ } /* TAKE_LAST: drop */
     :: else -> skip
     fi
  fi;
  gs = 0; gv = 0; glast = 0
}

/* Shares of positions from .. to-1. */
inline give_back(from, to) {
  assert(AHEAD(to, from) <= CAP);
  gq = from;
  do
  :: gq != to -> give_back_one(gq); gq = NEXT(gq)
  :: else -> break
  od;
  gq = 0
}

/* ---- a request (detach, leave, join): after CLOSING the requester applies it itself ---- */
/* Locals of the caller: cl, stopped, from + give_back's. */
inline request(k) {
  d_step { cl = req & CLOSING; req = req | REQUEST }; /* REQUEST */
  if
  :: cl ->
     d_step { /* one CAS on seat k */
       stopped = 0;
       if
       :: state[k] == STOP -> state[k] = VACANT; from = cursor[k]; stopped = 1 /* APPLY_STOP (closed) */
       :: state[k] == JOIN -> state[k] = TETHER; cursor[k] = tail; SEEN(r_join_self) /* APPLY_JOIN (closed) */
       :: else -> skip
       fi
     };
     if
     :: stopped -> give_back(from, tail) /* nothing is published after CLOSING: tail is final */
     :: else -> skip
     fi
  :: else -> skip
  fi;
  cl = 0; stopped = 0; from = 0
}

/* ---- the read core, one for every kind of consumer ---- */
/* Publishing the cursor: a tethered holder stores it; an evictable one releases its claim and
 * moves its cursor in one read-modify-write (fetch_add(ONE - CLAIM): CLAIMED -> RUN, or
 * STOP_CLAIMED -> STOP when it was detached mid-read); `was` keeps the state it had. */
inline publish_cursor(k, p) {
  if
  :: evict ->
     d_step { /* RELEASE_CLAIM */
       assert(cursor[k] == p && (state[k] == CLAIMED || state[k] == STOP_CLAIMED));
       was = state[k]; cursor[k] = NEXT(p); state[k] = state[k] - 1
     }
  :: else ->
     d_step { assert(cursor[k] == p && state[k] == TETHER); cursor[k] = NEXT(p) } /* CURSOR_STORE */
  fi
}

/* Read the value at position p for seat k. The caller has seen the write word past p (and, if
 * evictable, claimed p). Locals of the caller: rs, rv, rr, rlast, published, was, evict.
 *
 * Steps that only the reader can observe are grouped into one model step: between a reader's
 * read of a slot and its cursor store, no other thread may touch that slot's value (the
 * producer is held by the cursor, other readers are done with it once they have counted), so
 * an interleaving inside a group could only matter if the producer could write the slot then,
 * and it could as well do so before the group, where the WRITE's assertions catch it. The
 * count (DONE_ADD, shared by the readers) and the cursor are steps of their own; the injected
 * bugs move the cursor store earlier. */
inline read_core(k, p) {
#ifdef BUG_CURSOR_BEFORE_READ
  publish_cursor(k, p); published = 1;
#endif
  d_step {
    rs = SLOT(p);
    assert(present[rs] && POS_OF(val[rs]) == p); /* published, not released, in order */
    rv = val[rs]; rr = readers[rs];
    assert(rr >= 1);
    if
    :: rr == 1 -> present[rs] = 0; reached[rv]++; moved_out[rv]++ /* TAKE_SOLE: moved out; no count */
    :: else -> done[rs]++; reached[rv]++; rlast = (done[rs] == rr) /* CLONE, then DONE_ADD */
    fi
  };
  if
  :: rlast ->
#ifdef BUG_CURSOR_BEFORE_RESET
     publish_cursor(k, p); published = 1;
#endif
     d_step { /* DONE_RESET, then TAKE_LAST: the original is moved out (the reader keeps its clone) */
       done[rs] = 0; assert(present[rs]); present[rs] = 0; moved_out[rv]++
     }
  :: else -> skip
  fi;
  if
  :: !published -> publish_cursor(k, p)
  :: else -> skip
  fi;
  rs = 0; rv = 0; rr = 0; rlast = 0; published = 0
}

/* ---- the producer ---- */
#define POPCOUNT(m) (((m) & 1) + (((m) >> 1) & 1) + (((m) >> 2) & 1))
/* Seat i holds the producer back after a rescan (a STOP seat is applied by the rescan). */
#define HOLDS(i) ((((gated >> i) & 1) != 0) && state[i] != STOP && AHEAD(tail, cursor[i]) >= CAP)
/* What the producer's retry after Full waits for: a rescan that would open the gate, or a request. */
#define MAY_OPEN (!(HOLDS(0) || HOLDS(1) || HOLDS(2)) || (req & REQUEST) != 0)

/* Rescan the seats: apply requests, and cache the lowest counted cursor as the gate. */
inline rescan() {
  gate = tail; i = 0;
  do
  :: i < SEATS ->
     d_step { /* one load of seat i, and a CAS where a request applies */
       stopped = 0;
       if
       :: state[i] == JOIN -> /* APPLY_JOIN: counted from the next value on */
          cursor[i] = tail; state[i] = TETHER; counted = counted | (1 << i); SEEN(r_join_prod);
#ifndef BUG_GATE_MISSES_JOIN
          gated = gated | (1 << i)
#endif
       :: state[i] == STOP -> /* APPLY_STOP: no longer counted; the producer gives back its shares */
          state[i] = VACANT; from = cursor[i]; stopped = 1;
          counted = counted & ~(1 << i); gated = gated & ~(1 << i)
#ifdef BUG_DETACH_TAKES_CLAIM
       :: state[i] == STOP_CLAIMED -> /* wrong: gives away the value being read */
          state[i] = VACANT; from = cursor[i]; stopped = 1;
          counted = counted & ~(1 << i); gated = gated & ~(1 << i)
#endif
       :: else -> skip
       fi;
       /* only the producer moves a seat between counted and not counted (until CLOSING) */
       assert((req & CLOSING) != 0 || (((counted >> i) & 1) != 0) == COUNTED(state[i]));
       if
       :: ((gated >> i) & 1) != 0 ->
          assert(AHEAD(tail, cursor[i]) <= CAP); /* the distance rule holds */
          if
          :: AHEAD(tail, cursor[i]) > AHEAD(tail, gate) -> gate = cursor[i]
          :: else -> skip
          fi
       :: else -> skip
       fi
     };
     if
     :: stopped -> give_back(from, tail)
     :: else -> skip
     fi;
     stopped = 0; from = 0;
     i++
  :: else -> break
  od;
  i = 0
}

proctype Producer() {
  byte n, gate = START, i, ws, from;
  byte counted = 7, gated = 7; /* seats counted in `readers`; seats the gate looks at */
  bool scan, stopped;
  byte gs, gv, gq; bool glast;

  do
  :: n < VALUES ->
     atomic {
       scan = ((req & REQUEST) != 0); req = req & ~REQUEST; /* TAKE_REQUESTS: one load; a swap only when set */
       if
       :: !scan && AHEAD(tail, gate) < CAP -> goto write /* the fast path: no rescan */
       :: else -> skip
       fi
     };
     rescan(); /* GATE_RESCAN: requests to apply, or the cached gate reached */
     scan = 0;
     if
     :: AHEAD(tail, gate) < CAP ->
write:  atomic { /* WRITE (plain stores to the slot), then PUBLISH (Release store of the write word) */
          scan = 0;
          ws = SLOT(tail);
          assert(done[ws] == 0);    /* the count is at rest */
          assert(!present[ws]);     /* no reader holds the slot: its value was moved out */
          if
          :: n >= CAP && tail < START -> SEEN(r_reuse) /* a slot reused past the wrap */
          :: else -> skip
          fi;
          val[ws] = n; readers[ws] = POPCOUNT(counted); published_for[n] = readers[ws];
          if
          :: readers[ws] > 0 -> present[ws] = 1
          :: else -> moved_out[n] = 1 /* nobody counted: dropped at once */
          fi;
          ws = 0;
          tail = NEXT(tail);
          n++
        }
     :: else -> /* FULL: the caller retries; it gets somewhere only when this can change */
        SEEN(r_full);
        MAY_OPEN
     fi
  :: else -> break
  od;
  /* the publisher goes away */
  atomic { req = req | CLOSING }; /* CLOSE_BEGIN */
  rescan(); /* applies every request made before CLOSING */
  closed = 1 /* CLOSE: Release store of CLOSED in the write word */
}

/* ---- consumers ---- */

/* Consumer 2: tethered on seat 2 from the start, reads until closed. */
proctype Tethered() {
  byte k = 2, p = START;
  bool evict = 0;
  byte rs, rv, rr, was; bool rlast, published;
  do
  :: AHEAD(tail, p) > 0 -> read_core(k, p); p = NEXT(p)
  :: closed && AHEAD(tail, p) == 0 -> break /* drained, then closed */
  od
}

/* Consumer 0: tethered on seat 0; once, at any moment, detaches seat 1 (anyone may); once
 * leaves (its subscriber is dropped) and subscribes again, getting any free seat. */
proctype Mover() {
  byte k = 0, p = START;
  bool evict = 0;
  byte rs, rv, rr, was; bool rlast, published;
  byte cl, from, to, gs, gv, gq, found, n; bool stopped, glast, ok;
  bool did_detach, did_leave;
  do
  :: AHEAD(tail, p) > 0 -> read_core(k, p); p = NEXT(p)
  :: closed && AHEAD(tail, p) == 0 -> break
  :: (SCENARIO & 1) && !did_detach ->
     did_detach = 1;
     d_step { /* DETACH: a CAS, only from an evictable state (a tethered seat refuses) */
       if
       :: state[1] == RUN -> state[1] = STOP; ok = 1
       :: state[1] == CLAIMED -> state[1] = STOP_CLAIMED; ok = 1
       :: else -> ok = 0
       fi
     };
     if
     :: ok -> request(1)
     :: else -> skip
     fi;
     ok = 0
  :: (SCENARIO & 2) && !did_leave ->
     did_leave = 1;
     d_step { assert(state[k] == TETHER && cursor[k] == p); state[k] = STOP }; /* LEAVE */
     request(k);
     /* subscribe again: the first seat that is vacant, or left and not yet applied, looking
      * at seat 1 first (so that it may take the seat of a detached consumer 1), then 2, 0 */
     k = 1; n = 0;
     do
     :: n < SEATS ->
        d_step { /* one CAS on seat k */
          if
          :: state[k] == VACANT -> state[k] = JOIN; found = 1 /* SUBSCRIBE */
#ifndef BUG_LEAVE_NEEDS_PRODUCER
#ifndef BUG_TAKE_OVER_CURSOR_FIRST
          :: state[k] == STOP -> state[k] = TETHER; from = cursor[k]; found = 2 /* TAKE_OVER */
#else
          :: state[k] == STOP -> /* wrong: publishes its new position before giving back */
             state[k] = TETHER; from = cursor[k]; cursor[k] = tail; to = tail; found = 2
#endif
#endif
          :: else -> skip
          fi
        };
        if
        :: found -> break
        :: else -> k = (k + 1) % SEATS; n++
        fi
     :: else -> break
     od;
     n = 0;
     assert(found != 0); /* defect 5: a seat given up by a leave is free at once */
     if
     :: found == 1 ->
        request(k);
        atomic { state[k] != JOIN -> assert(state[k] == TETHER); p = cursor[k] } /* JOINED: Acquire load */
     :: found == 2 ->
        /* it holds the seat at the old frontier (the producer stays held there), gives back
         * the shares up to the write position it reads, then publishes that as its cursor */
        SEEN(r_takeover);
#ifndef BUG_TAKE_OVER_CURSOR_FIRST
        to = tail;
        give_back(from, to);
        d_step { assert(state[k] == TETHER && cursor[k] == from); cursor[k] = to }; /* CURSOR_STORE */
#else
        give_back(from, to);
#endif
        p = to; to = 0; from = 0
     fi;
     found = 0
  od
}

/* Consumer 1: evictable on seat 1: claims each value before reading it; may be detached at
 * any moment, also mid-read; then rejoins once. */
proctype Evictable() {
  byte k = 1, p = START;
  bool evict = 1;
  byte rs, rv, rr, was; bool rlast, published;
  byte cl, from, gs, gv, gq, rj; bool stopped, glast, ok, rejoined;
loop:
  do
  :: AHEAD(tail, p) > 0 ->
     d_step { /* CLAIM: CAS (p, RUN) -> (p, CLAIMED) */
       if
       :: state[k] == RUN && cursor[k] == p -> state[k] = CLAIMED; ok = 1
       :: else -> ok = 0
       fi
     };
     if
     :: ok ->
        ok = 0;
        read_core(k, p); p = NEXT(p);
        if
        :: was == STOP_CLAIMED -> /* detached mid-read: it asks the producer to apply it */
           was = 0; SEEN(r_mid);
           request(k);
           goto detached
        :: else -> was = 0
        fi
     :: else -> goto detached
     fi
  :: closed && AHEAD(tail, p) == 0 -> goto finish
  :: state[k] != RUN || cursor[k] != p -> goto detached /* its word changed under it */
  od;
detached:
  if
  :: rejoined -> goto finish
  :: else -> rejoined = 1
  fi;
  d_step { /* one CAS on its seat */
    if
    :: state[k] == STOP && cursor[k] == p -> state[k] = RUN; rj = 1 /* REJOIN_CANCEL */
    :: state[k] == VACANT -> state[k] = JOIN; rj = 2 /* SUBSCRIBE (rejoin) */
    :: else -> rj = 0 /* the seat was taken: rejoin fails */
    fi
  };
  if
  :: rj == 1 -> rj = 0; SEEN(r_cancel); goto loop
  :: rj == 2 ->
     rj = 0;
     request(k);
     atomic { /* JOINED, then MAKE_EVICTABLE: CAS (q, TETHER) -> (q, RUN) */
       state[k] != JOIN -> assert(state[k] == TETHER); p = cursor[k]; state[k] = RUN
     };
     goto loop
  :: rj == 0 -> SEEN(r_lost)
  fi;
finish:
  skip
}

init {
  byte v;
  assert(VALUES < W); /* a value is told from the one W positions earlier by its position */
  d_step {
    state[0] = TETHER; state[1] = RUN; state[2] = TETHER;
    cursor[0] = START; cursor[1] = START; cursor[2] = START
  };
  atomic { run Producer(); run Mover(); run Evictable(); run Tethered() };
  _nr_pr == 1; /* everyone has finished */
  /* every value reached every consumer counted for it exactly once, and left its slot once */
  v = 0;
  do
  :: v < VALUES ->
     assert(reached[v] == published_for[v]);
     assert(moved_out[v] == 1);
     v++
  :: else -> break
  od;
  v = 0;
  do
  :: v < CAP -> assert(done[v] == 0 && !present[v]); v++
  :: else -> break
  od;
#ifdef REACH
  /* reachability probes: each must fail, which shows the scenario is explored */
  assert(!(REACH == 1 && r_mid));       /* a detach mid-read */
  assert(!(REACH == 2 && r_join_prod)); /* a join applied by the producer */
  assert(!(REACH == 3 && r_takeover));  /* a left seat taken over */
  assert(!(REACH == 4 && r_cancel));    /* a rejoin that cancels a detach */
  assert(!(REACH == 5 && r_lost));      /* a rejoin that finds its seat taken */
  assert(!(REACH == 6 && r_full));      /* the producer full */
  assert(!(REACH == 7 && r_join_self)); /* a join applied by its requester after close */
  assert(!(REACH == 8 && r_reuse));     /* a slot reused after the positions wrapped */
#endif
  skip
}
