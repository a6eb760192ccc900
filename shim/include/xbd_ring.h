/* xbd_ring.h: Xen's public io/ring.h macros, written anew; RING_IDX is 32 bits. */
#ifndef XBD_RING_H
#define XBD_RING_H
typedef uint32_t RING_IDX;
/* Test hook (not in ring.h): every index starts here (0 = the macros), so tests can run
 * the free-running indices across 2^32 early; the reference's ring_index_start. */
extern RING_IDX shim_ring_index_start;
/* FRONT_RING_INITs so far: tells the harness a ring is fresh (an address may be reused). */
extern unsigned shim_front_ring_inits;

#define __RD2(_x) (((_x) & 0x00000002) ? 0x2 : ((_x) & 0x1))
#define __RD4(_x) (((_x) & 0x0000000c) ? __RD2((_x) >> 2) << 2 : __RD2(_x))
#define __RD8(_x) (((_x) & 0x000000f0) ? __RD4((_x) >> 4) << 4 : __RD4(_x))
#define __RD16(_x) (((_x) & 0x0000ff00) ? __RD8((_x) >> 8) << 8 : __RD8(_x))
#define __RD32(_x) (((_x) & 0xffff0000) ? __RD16((_x) >> 16) << 16 : __RD16(_x))

#define __CONST_RING_SIZE(_s, _sz) \
	(__RD32(((_sz) - offsetof(struct _s##_sring, ring)) / sizeof(((struct _s##_sring *)0)->ring[0])))
#define __RING_SIZE(_s, _sz) \
	(__RD32(((_sz) - (long)(_s)->ring + (long)(_s)) / sizeof((_s)->ring[0])))

#define DEFINE_RING_TYPES(__name, __req_t, __rsp_t)                          \
	union __name##_sring_entry { __req_t req; __rsp_t rsp; };            \
	struct __name##_sring {                                              \
		RING_IDX req_prod, req_event;                                \
		RING_IDX rsp_prod, rsp_event;                                \
		union { struct { uint8_t smartpoll_active; } netif;          \
			struct { uint8_t msg; } tapif_user;                  \
			uint8_t pvt_pad[4]; } pvt;                           \
		uint8_t __pad[44];                                           \
		union __name##_sring_entry ring[1];                          \
	};                                                                   \
	struct __name##_front_ring {                                         \
		RING_IDX req_prod_pvt;                                       \
		RING_IDX rsp_cons;                                           \
		unsigned int nr_ents;                                        \
		struct __name##_sring *sring;                                \
	};                                                                   \
	struct __name##_back_ring {                                          \
		RING_IDX rsp_prod_pvt;                                       \
		RING_IDX req_cons;                                           \
		unsigned int nr_ents;                                        \
		struct __name##_sring *sring;                                \
	};                                                                   \
	typedef struct __name##_sring __name##_sring_t;                      \
	typedef struct __name##_front_ring __name##_front_ring_t;            \
	typedef struct __name##_back_ring __name##_back_ring_t

#define SHARED_RING_INIT(_s) do {                                            \
	(_s)->req_prod = (_s)->rsp_prod = shim_ring_index_start;             \
	(_s)->req_event = (_s)->rsp_event = shim_ring_index_start + 1;       \
	(void)memset((_s)->pvt.pvt_pad, 0, sizeof((_s)->pvt.pvt_pad));       \
	(void)memset((_s)->__pad, 0, sizeof((_s)->__pad));                   \
} while (0)
#define FRONT_RING_INIT(_r, _s, __size) do {                                 \
	(_r)->req_prod_pvt = shim_ring_index_start;                          \
	(_r)->rsp_cons = shim_ring_index_start;                              \
	(_r)->nr_ents = __RING_SIZE(_s, __size); (_r)->sring = (_s);         \
	shim_front_ring_inits++;                                             \
} while (0)
#define BACK_RING_ATTACH(_r, _s, __size) do {                                \
	(_r)->rsp_prod_pvt = (_s)->rsp_prod; (_r)->req_cons = (_s)->req_prod; \
	(_r)->nr_ents = __RING_SIZE(_s, __size); (_r)->sring = (_s);         \
} while (0)
#define RING_SIZE(_r) ((_r)->nr_ents)
#define RING_FREE_REQUESTS(_r) (RING_SIZE(_r) - ((_r)->req_prod_pvt - (_r)->rsp_cons))
#define RING_FULL(_r) (RING_FREE_REQUESTS(_r) == 0)
#define RING_HAS_UNCONSUMED_RESPONSES(_r) ((_r)->sring->rsp_prod - (_r)->rsp_cons)
#define RING_HAS_UNCONSUMED_REQUESTS(_r) ({                                  \
	unsigned int req = (_r)->sring->req_prod - (_r)->req_cons;           \
	unsigned int rsp = RING_SIZE(_r) - ((_r)->req_cons - (_r)->rsp_prod_pvt); \
	req < rsp ? req : rsp; })
#define RING_GET_REQUEST(_r, _idx) (&((_r)->sring->ring[((_idx) & (RING_SIZE(_r) - 1))].req))
#define RING_GET_RESPONSE(_r, _idx) (&((_r)->sring->ring[((_idx) & (RING_SIZE(_r) - 1))].rsp))
#define RING_PUSH_REQUESTS_AND_CHECK_NOTIFY(_r, _notify) do {                \
	RING_IDX __old = (_r)->sring->req_prod;                              \
	RING_IDX __new = (_r)->req_prod_pvt;                                 \
	xen_wmb();                                                           \
	(_r)->sring->req_prod = __new;                                       \
	xen_mb();                                                            \
	(_notify) = ((RING_IDX)(__new - (_r)->sring->req_event) <            \
		     (RING_IDX)(__new - __old));                             \
} while (0)
#define RING_PUSH_RESPONSES_AND_CHECK_NOTIFY(_r, _notify) do {               \
	RING_IDX __old = (_r)->sring->rsp_prod;                              \
	RING_IDX __new = (_r)->rsp_prod_pvt;                                 \
	xen_wmb();                                                           \
	(_r)->sring->rsp_prod = __new;                                       \
	xen_mb();                                                            \
	(_notify) = ((RING_IDX)(__new - (_r)->sring->rsp_event) <            \
		     (RING_IDX)(__new - __old));                             \
} while (0)
#define RING_FINAL_CHECK_FOR_RESPONSES(_r, _work_to_do) do {                 \
	(_work_to_do) = RING_HAS_UNCONSUMED_RESPONSES(_r);                   \
	if (_work_to_do) break;                                              \
	(_r)->sring->rsp_event = (_r)->rsp_cons + 1;                         \
	xen_mb();                                                            \
	(_work_to_do) = RING_HAS_UNCONSUMED_RESPONSES(_r);                   \
} while (0)
#define RING_FINAL_CHECK_FOR_REQUESTS(_r, _work_to_do) do {                  \
	(_work_to_do) = RING_HAS_UNCONSUMED_REQUESTS(_r);                    \
	if (_work_to_do) break;                                              \
	(_r)->sring->req_event = (_r)->req_cons + 1;                         \
	xen_mb();                                                            \
	(_work_to_do) = RING_HAS_UNCONSUMED_REQUESTS(_r);                    \
} while (0)
#endif
