// Attention's probabilities in C (attn_probs_c.go), RJ_W lanes at a time:
// included once per kernel set with RJ_W (lanes), RJ_SUF (name suffix)
// and RJ_ATTR (target attribute) defined. GCC vector extensions, compiled
// with fp-contract=off (the including file's pragma): every operation is
// the Go twin's (attention_bi.go's attnProbsBIGo, attention_gemm.go's
// attnExpRowGo, expf.go's expf), rounded on its own, in the same order.

#define RJ_CAT2(a, b) a##_##b
#define RJ_CAT(a, b) RJ_CAT2(a, b)
#define RJ_FN(name) RJ_CAT(name, RJ_SUF)
#define RJ_VF RJ_FN(rj_vf)
#define RJ_VI RJ_FN(rj_vi)
#define RJ_VB RJ_FN(rj_vb)

typedef float RJ_VF __attribute__((vector_size(4 * RJ_W)));
typedef int32_t RJ_VI __attribute__((vector_size(4 * RJ_W)));
typedef uint8_t RJ_VB __attribute__((vector_size(RJ_W)));

// expf is kernels.expf's polynomial path statement for statement (as
// swiglu_c.go's rljob_expf, on RJ_W lanes): right for -87.33654 <= x <=
// 88.37626; the callers mask or refuse the other lanes.
RJ_ATTR static inline RJ_VF RJ_FN(rj_attn_expf)(RJ_VF x) {
	RJ_VF fx = x * 1.44269504088896341f;
	RJ_VI half = ((RJ_VI)fx & (int32_t)0x80000000) | (int32_t)0x3f000000; // copysign(0.5, fx)
	fx = fx + (RJ_VF)half;
	RJ_VI n = __builtin_convertvector(fx, RJ_VI); // truncation, as Go's int32()
	RJ_VF fn = __builtin_convertvector(n, RJ_VF);
	RJ_VF r = x - fn * 0.693359375f - fn * -2.12194440e-4f;
	RJ_VF z = r * r;
	RJ_VF p = ((((((1.9875691500e-4f * r + 1.3981999507e-3f) * r + 8.3334519073e-3f) * r + 4.1665795894e-2f) * r + 1.6666665459e-1f) * r + 5.0000001201e-1f) * z + r) + 1;
	return p * (RJ_VF)((n + 127) << 23);
}

// load reads lanes u..u+RJ_W-1 of x (n values) and the lanes that take
// part (ok nil: all) as a mask; lanes past n read 0 and do not take part.
RJ_ATTR static inline RJ_VF RJ_FN(rj_attn_load)(const float *x, const uint8_t *ok, long u, long n, RJ_VI *m) {
	RJ_VF v = {0};
	RJ_VB b = {0};
	if (u + RJ_W <= n) {
		memcpy(&v, x + u, sizeof v);
		if (!ok) {
			*m = (RJ_VI){0} - 1;
			return v;
		}
		memcpy(&b, ok + u, sizeof b);
	} else {
		for (long i = 0; i < n - u; i++) {
			v[i] = x[u + i];
			b[i] = ok ? ok[u + i] : 1;
		}
	}
	*m = __builtin_convertvector(b, RJ_VI) != 0;
	return v;
}

RJ_ATTR static inline void RJ_FN(rj_attn_store)(float *x, long u, long n, RJ_VF v) {
	if (u + RJ_W <= n) {
		memcpy(x + u, &v, sizeof v);
		return;
	}
	for (long i = 0; i < n - u; i++) x[u + i] = v[i];
}

#define RJ_SEL(m, a, b) ((RJ_VF)(((RJ_VI)(a) & (m)) | ((RJ_VI)(b) & ~(m))))

// probs_row is attnProbsBIGo on s[0:n]: returns 1, s untouched, when a
// lane would take expf's rare paths (a NaN or infinite maximum, an
// argument in [-103.97208, -87.33654)): the caller runs the Go loop.
RJ_ATTR static int RJ_FN(rj_attn_probs_row)(float *s, const uint8_t *ok, long n, float scale, float *omx, float *osum) {
	const float inf = __builtin_inff();
	RJ_VF vmx = (RJ_VF){0} - inf, vmn = (RJ_VF){0} + inf;
	RJ_VI nan = {0}, m;
	for (long u = 0; u < n; u += RJ_W) {
		RJ_VF x = RJ_FN(rj_attn_load)(s, ok, u, n, &m) * scale;
		nan |= m & (x != x);
		vmx = RJ_SEL(m & (x > vmx), x, vmx);
		vmn = RJ_SEL(m & (x < vmn), x, vmn);
	}
	float mx = -inf, mn = inf;
	int bad = 0;
	for (int i = 0; i < RJ_W; i++) {
		mx = vmx[i] > mx ? vmx[i] : mx;
		mn = vmn[i] < mn ? vmn[i] : mn;
		bad |= nan[i] != 0;
	}
	if (bad || mx == inf || mx == -inf) return 1;
	if (mn - mx < -87.33654f) {
		for (long u = 0; u < n; u++) {
			float d = s[u] * scale - mx;
			if ((!ok || ok[u]) && d < -87.33654f && !(d < -103.97208f)) return 1;
		}
	}
	for (long u = 0; u < n; u += RJ_W) {
		RJ_VF d = RJ_FN(rj_attn_load)(s, ok, u, n, &m) * scale - mx;
		RJ_VF e = RJ_FN(rj_attn_expf)(d);
		RJ_FN(rj_attn_store)(s, u, n, RJ_SEL(m & (d >= -103.97208f), e, (RJ_VF){0}));
	}
	float sum = 0;
	for (long u = 0; u < n; u++) sum += s[u]; // u ascending: the decode's order
	float inv = 1 / sum;
	for (long u = 0; u < n; u++) s[u] *= inv;
	*omx = mx;
	*osum = sum;
	return 0;
}

// exp_row is attnExpRowGo on row[0:n]: returns 1, row untouched, when a
// lane would take expf's rare paths (NaN, above 88.37626, or in
// [-103.97208, -87.33654)).
RJ_ATTR static int RJ_FN(rj_attn_exp_row)(float *row, const uint8_t *ok, long n, float scale, float l) {
	RJ_VI bad = {0}, m;
	for (long u = 0; u < n; u += RJ_W) {
		RJ_VF d = RJ_FN(rj_attn_load)(row, ok, u, n, &m) * scale - l;
		bad |= m & ((d != d) | (d > 88.37626f) | ((d < -87.33654f) & (d >= -103.97208f)));
	}
	for (int i = 0; i < RJ_W; i++) {
		if (bad[i]) return 1;
	}
	for (long u = 0; u < n; u += RJ_W) {
		RJ_VF d = RJ_FN(rj_attn_load)(row, ok, u, n, &m) * scale - l;
		RJ_VF e = RJ_FN(rj_attn_expf)(d);
		RJ_FN(rj_attn_store)(row, u, n, RJ_SEL(m & (d >= -103.97208f), e, (RJ_VF){0}));
	}
	return 0;
}

#undef RJ_SEL
#undef RJ_VF
#undef RJ_VI
#undef RJ_VB
