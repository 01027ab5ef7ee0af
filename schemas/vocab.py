"""Controlled vocabularies shared by the generator, silver standardisation and the rules.

Departments write the Chinese labels; silver maps them to these codes.
"""

from __future__ import annotations

HOUSE_USAGE = {"住宅": "residential", "城中村自建房": "village_self_built", "宿舍": "dormitory", "商业": "commercial"}
HOUSE_LEGAL = {"合法": "legal", "历史遗留": "historical", "违法建筑": "illegal"}
HOUSE_STATUS = {"在用": "in_use", "已拆除": "demolished"}
RENTAL_STATUS = {"有效": "active", "已终止": "ended", "已注销": "cancelled"}
RELATION = {"业主": "owner", "租户": "tenant", "家庭成员": "member"}
CHANNEL = {"APP": "app", "微信": "wechat", "扫码": "qr_code", "窗口": "counter"}
INCIDENT_TYPES = ["治安纠纷", "盗窃", "噪音扰民", "家庭纠纷", "消防隐患", "其他"]
DISPUTE_TYPES = ["房屋租赁纠纷", "邻里纠纷", "劳资纠纷", "家庭纠纷"]
SAFETY_FINDINGS = ["消防隐患", "私拉电线", "群租超员", "燃气隐患", "通道堵塞"]
SAFETY_SEVERITY = {"重大": "major", "较大": "serious", "一般": "minor"}
FP_MATTERS = ["流动人口婚育证明", "计生服务", "政策外生育调查"]
VERIFICATION_OUTCOME = {
    "属实": "confirmed",
    "现场已申报": "declared_on_site",
    "未出租": "not_rented",
    "空置": "vacant",
    "地址错误": "wrong_address",
    "已整改": "resolved",
}

# Enforcement sources: department category shown to officers (never the details).
ENFORCEMENT_SOURCES = {
    "police_incidents": "公安",
    "mediation_cases": "调解",
    "safety_inspections": "安全生产",
    "family_planning": "计生",
}
